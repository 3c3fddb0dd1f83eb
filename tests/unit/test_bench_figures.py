"""The benchmarks' figures page: each benchmark replaces its own section and leaves the rest alone."""

from __future__ import annotations

import pytest

from bench.figures import command_line, markdown_table, replace_section, write_section

PAGE = """# Benchmarks

## DKIM signing

<!-- bench:dkim -->
old dkim figures
<!-- /bench:dkim -->

Why signing costs what it costs.

## The appliance end to end

<!-- bench:appliance -->
old appliance figures
<!-- /bench:appliance -->
"""


def test_a_benchmark_replaces_only_the_text_between_its_own_markers():
    updated = replace_section(PAGE, "dkim", "| path | msg/s |\n|---|---|\n| c | 180 |\n")
    assert "old dkim figures" not in updated and "| c | 180 |\n<!-- /bench:dkim -->" in updated
    assert "<!-- bench:dkim -->\n| path | msg/s |" in updated
    assert updated.replace(updated[updated.index("<!-- bench:dkim"):updated.index("Why")], "") \
        == PAGE.replace(PAGE[PAGE.index("<!-- bench:dkim"):PAGE.index("Why")], "")


def test_replacing_a_section_twice_gives_the_same_page_as_once():
    once = replace_section(PAGE, "appliance", "new")
    assert replace_section(once, "appliance", "new") == once
    assert once.endswith("<!-- bench:appliance -->\nnew\n<!-- /bench:appliance -->\n")


def test_a_missing_section_is_added_at_the_end_with_its_markers():
    updated = replace_section(PAGE, "api", "figures")
    assert updated.startswith(PAGE.rstrip()) and updated.endswith("<!-- bench:api -->\nfigures\n<!-- /bench:api -->\n")


def test_a_section_opened_but_never_closed_is_an_error_not_a_truncated_page():
    with pytest.raises(ValueError, match="bench:dkim"):
        replace_section("<!-- bench:dkim -->\nfigures and then nothing\n", "dkim", "new")


def test_writing_a_section_creates_the_page_with_a_heading_when_it_is_missing(tmp_path):
    page = tmp_path / "benchmarks.md"
    write_section("testbed", "one host: 3.2 s", page)
    write_section("testbed", "one host: 3.1 s", page)
    text = page.read_text()
    assert text.startswith("# Benchmarks\n") and text.count("bench:testbed -->") == 2 and "3.1 s" in text
    assert "3.2 s" not in text


def test_the_command_shown_is_the_one_that_ran():
    shown = command_line(["/somewhere/bench/dkim.py", "--messages", "2000", "--note", "two words"])
    assert shown.startswith("`.venv/bin/python bench/dkim.py --messages 2000 --note 'two words'` (run ")


def test_a_table_has_a_header_a_rule_and_one_line_per_row():
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
