"""Headless Debian Chromium driven by selenium against a deployed testbed's console: the testbed's names
mapped in the browser, the API certificate's key pinned (never a blanket ignore of certificate errors),
and the browser's console and network logs kept for the CSP and same-origin checks."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["CHROMEDRIVER", "CHROMIUM", "Browser", "BrowserLogs", "chromium_options", "spki_pin", "until"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20  # seconds a page or an element may take


def spki_pin(host: str, address: str, root_pem: str, port: int = 443) -> str:
    """The base64 SHA-256 of the served certificate's SubjectPublicKeyInfo (Chromium's SPKI pin), fetched from
    `address` with the SNI `host` and checked against the ACME test CA's root first."""
    context = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection((address, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(Encoding.DER,
                                                                        PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def chromium_options(host_names: Mapping[str, str], pins: list[str]) -> webdriver.ChromeOptions:
    """Headless Chromium that resolves only the testbed's names itself and trusts only the pinned keys."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-default-apps",
                     "--host-resolver-rules=" + ", ".join(f"MAP {name} {address}"
                                                          for name, address in host_names.items()),
                     "--ignore-certificate-errors-spki-list=" + ",".join(pins)):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return options


@dataclass
class BrowserLogs:
    """What every browser of a run logged: console messages and the URLs of the requests it sent."""

    console: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    documents: list[tuple[str, str, int]] = field(default_factory=list)  # (method, url, status) of pages

    def csp_violations(self) -> list[str]:
        return [entry["message"] for entry in self.console
                if entry["level"] == "SEVERE" and ("Refused to" in entry["message"]
                                                   or "Content Security Policy" in entry["message"])]

    def foreign_requests(self, origin: str) -> list[str]:
        """Requests to anything but `origin` (data: URIs are the page's own bytes, not requests)."""
        return [url for url in self.requests if not url.startswith("data:") and _origin(url) != origin]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Browser:
    """One headless Chromium (its own profile, so its own cookies) on the console of `origin`."""

    def __init__(self, origin: str, options: webdriver.ChromeOptions, logs: BrowserLogs, shots: Path) -> None:
        self.origin = origin
        self.logs = logs
        self.shots = shots
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(WAIT * 3)
        self._pending_posts: dict[str, tuple[str, str]] = {}

    def close(self) -> None:
        self.drain()
        self.driver.quit()

    # -- logs

    def drain(self) -> None:
        """Move what the browser logged since the last call into `logs`."""
        self.logs.console.extend(self.driver.get_log("browser"))
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                request = params["request"]
                self.logs.requests.append(request["url"])
                if params.get("type") == "Document":
                    self._pending_posts[params["requestId"]] = (request["method"], request["url"])
            elif message["method"] == "Network.responseReceived" and params.get("type") == "Document":
                method, url = self._pending_posts.pop(params["requestId"], ("GET", params["response"]["url"]))
                self.logs.documents.append((method, url, int(params["response"]["status"])))

    def last_document_status(self) -> int:
        """The HTTP status of the page now shown (the last document response, after redirects)."""
        self.drain()
        return self.logs.documents[-1][2]

    # -- pages

    def open(self, path: str) -> None:
        self.driver.get(self.origin + path)
        self.wait_loaded()

    def wait_loaded(self) -> None:
        WebDriverWait(self.driver, WAIT).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    @property
    def path(self) -> str:
        parts = urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def heading(self) -> str:
        found = self.driver.find_elements(By.TAG_NAME, "h1")
        return found[0].text if found else ""

    def is_missing_page(self) -> bool:
        """Whether the page shown was answered 404 (a route the console does not have, or its error page)."""
        return self.last_document_status() == 404

    def form(self, action: str, contains: str | None = None) -> WebElement:
        """The first form posting to `action` (a path; or, with `contains`, an action containing that text)."""
        forms = self.driver.find_elements(By.CSS_SELECTOR, "form[method='post'], form[method='POST']")
        for candidate in forms:
            target = urlsplit(candidate.get_attribute("action") or "").path
            if (contains is None and target == action) or (contains is not None and target.startswith(action)
                                                            and contains in target):
                return candidate
        raise AssertionError(f"no form to {action} {contains or ''} on {self.path}: "
                             f"{[f.get_attribute('action') for f in forms]}")

    def has_form(self, action: str, contains: str | None = None) -> bool:
        try:
            self.form(action, contains)
        except AssertionError:
            return False
        return True

    def submit(self, form: WebElement, fields: Mapping[str, str] | None = None,
               button: str | None = None) -> None:
        """Fill `fields` (by input name: text is typed, a select's option is chosen by value, a checkbox is
        ticked) and press the form's submit button (or the one whose text contains `button`)."""
        for name, value in (fields or {}).items():
            element = form.find_element(By.NAME, name)
            tag, kind = element.tag_name, element.get_attribute("type")
            if tag == "select":
                element.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
            elif kind in ("checkbox", "radio"):
                box = form.find_element(By.CSS_SELECTOR, f"input[name='{name}'][value='{value}']") \
                    if kind == "radio" or element.get_attribute("value") != value else element
                if not box.is_selected():
                    box.click()
            else:
                element.clear()
                element.send_keys(value)
        buttons = form.find_elements(By.CSS_SELECTOR, "button[type='submit'], input[type='submit'], button:not([type])")
        chosen = next((b for b in buttons if button is None or button.lower() in b.text.lower()), None)
        assert chosen is not None, f"no submit button {button or ''} in the form"
        old = self.driver.find_element(By.TAG_NAME, "html")
        chosen.click()
        WebDriverWait(self.driver, WAIT).until(lambda d: _stale(old))
        self.wait_loaded()

    def links(self, contains: str) -> list[str]:
        """The hrefs of the page's links that contain `contains`."""
        return [href for a in self.driver.find_elements(By.TAG_NAME, "a")
                if contains in (href := a.get_attribute("href") or "")]

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"console-{name}.png"
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path

    def wait_for_text(self, wanted: str, reload: bool = True, timeout: float = 60) -> None:
        """Reload the page until its text contains `wanted` (events and checks arrive asynchronously)."""
        until(lambda: wanted in self.text() or (reload and self._reload()), timeout, f"{wanted!r} on {self.path}")

    def _reload(self) -> bool:
        self.driver.refresh()
        self.wait_loaded()
        return False


def _stale(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except Exception:  # StaleElementReferenceException: the new page replaced the old one
        return True
    return False


def until(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    """Call `check` until it returns something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(every)
    return result
