"""Parsers of tool output: pyinfra's results table and nmap's XML report."""

from __future__ import annotations

import pytest

from postyard.deployer import DeployError, failure_summary, parse_totals
from postyard.probe import parse_nmap_xml

PYINFRA_RESULTS = """
--> Results:
    Operation                                  Hosts   Success   Error   No Change
    Base | Set the host name                   2       -         -       2
    Firewall | Load the firewall               2       1         -       1
    Grand total                                4       1         -       3
"""

NMAP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" version="7.93" xmloutputversion="1.05">
<host><status state="up" reason="user-set"/>
<address addr="10.77.0.10" addrtype="ipv4"/>
<ports><extraports state="filtered" count="65533">
<extrareasons reason="no-response" count="65533" proto="tcp" ports="1-21,23-8998,9000-65535"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/></port>
<port protocol="tcp" portid="8999"><state state="closed" reason="reset"/></port>
</ports></host></nmaprun>
"""


def test_totals_count_changed_and_unchanged_operations():
    assert parse_totals(PYINFRA_RESULTS) == (4, 1, 3)


def test_totals_with_an_error_raise():
    with pytest.raises(DeployError, match="1 operation"):
        parse_totals(PYINFRA_RESULTS.replace("4       1         -       3", "4       1         1       2"))


def test_output_without_results_raises():
    with pytest.raises(DeployError, match="no results table"):
        parse_totals("--> pyinfra error: No hosts remaining!")


def test_a_failure_summary_names_the_operation_that_failed():
    lines = [
        "\x1b[34m--> Starting operation:\x1b[0m \x1b[1mPostfix | Restart Postfix\x1b[0m \n",
        "    [mail1.postyard.test]  Success\n",
        "\x1b[34m--> Starting operation:\x1b[0m \x1b[1mPostfix | Reload Postfix\x1b[0m \n",
        "    [db1.postyard.test]    Skipped\n",
        "    [mail1.postyard.test]  Job for postfix.service failed.\n",
        "    [mail1.postyard.test]  Error: executed 0 commands\n",
    ]
    summary = failure_summary(lines)
    assert summary.startswith("--> Starting operation: Postfix | Reload Postfix")
    assert "Job for postfix.service failed." in summary


def test_nmap_report_lists_every_port_including_folded_ones():
    states = parse_nmap_xml(NMAP_XML)["10.77.0.10"]
    assert len(states) == 65535
    assert states[22] == "open"
    assert states[8999] == "closed"
    assert states[25] == "filtered"
    assert states[65535] == "filtered"
