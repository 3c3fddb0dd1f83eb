"""What the hosts install to run the app."""

from __future__ import annotations

import pytest
from pyinfra.api.exceptions import DeployError

from roles.app_runtime import CONTROL_ONLY, REPO, app_requirements, pinned_requirements


def test_every_runtime_dependency_is_pinned_by_the_lock():
    pinned = pinned_requirements(app_requirements(), (REPO / "constraints.txt").read_text())
    names = [line.split("==")[0] for line in pinned.splitlines()]
    assert names == app_requirements() and all("==" in line for line in pinned.splitlines())
    assert not set(names) & CONTROL_ONLY


def test_a_dependency_missing_from_the_lock_is_a_clear_error():
    with pytest.raises(DeployError, match="locks no version of litestar"):
        pinned_requirements(["litestar"], "msgspec==0.19\n")


def test_the_settings_file_refuses_values_a_shell_or_systemd_would_read_differently():
    from roles.app_runtime import render_env

    assert render_env({"POSTYARD_X": "k1:ab+/="}).endswith("POSTYARD_X=k1:ab+/=\n")
    for value in ("two words", "a$b", "a'b", "a\nb"):
        with pytest.raises(DeployError, match="POSTYARD_X"):
            render_env({"POSTYARD_X": value})
