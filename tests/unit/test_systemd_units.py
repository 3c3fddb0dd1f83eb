"""The one-command unit state the deploy reads before starting and enabling a unit."""

from __future__ import annotations

import pytest

from roles.support.systemd_units import UnitStates


@pytest.mark.parametrize(("output", "expected"), [
    (["Id=ssh.service", "SubState=running", "UnitFileState=enabled"], (True, True)),
    (["Id=postgresql@15-main.service", "SubState=dead", "UnitFileState=enabled"], (False, True)),
    (["Id=certbot.timer", "SubState=waiting", "UnitFileState=static"], (True, True)),
    (["Id=nftables.service", "SubState=exited", "UnitFileState=disabled"], (True, False)),
    (["Id=redis-server.service", "SubState=failed", "UnitFileState=masked"], (False, False)),
])
def test_unit_states_read_active_and_enabled_from_one_show(output: list[str], expected: tuple[bool, bool]) -> None:
    unit = output[0].split("=", 1)[1]
    assert UnitStates().process(output) == {unit: expected}


def test_the_show_command_asks_for_both_states() -> None:
    command = str(UnitStates().command(unit="dovecot.service"))
    assert "SubState" in command and "UnitFileState" in command and command.endswith("dovecot.service")
