// Progressive enhancement only: every page works without this file.
// A button with data-copy-target="ID" copies the text of the element with that id.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!navigator.clipboard) {
    return;
  }
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target) {
      return;
    }
    const label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.innerText.trim()).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });
  // A form with data-confirm="question" asks before it is sent.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
});
