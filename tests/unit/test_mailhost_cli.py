"""Every mail-host process starts through one CLI (`python -m app.mailhost`, which loads only its own modules),
with settings read through app/config.py."""

from __future__ import annotations

import argparse
import base64
import re
import shlex
import subprocess
import sys

from test_templates import MAIL_DATA, MAIL_LOGIN, render

from app.config import Settings
from app.host_layout import DKIM_DIR, POLICY_SOCKET
from app.mailhost.cli import COMMANDS, add_mailhost_commands
from roles import mail_services, opendkim, postfix
from roles.app_runtime import LAUNCHER, LAUNCHER_SCRIPT, MAILHOST_PROCESS, PYTHON

DATA_KEYS = "k1:" + base64.b64encode(bytes(32)).decode()
# Set in the units to restart them on a new release; no setting of the app.
NOT_SETTINGS = {"POSTYARD_RELEASE"}


def _exec_start(unit: str) -> str:
    return re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1)  # type: ignore[union-attr]


def _started_commands() -> list[list[str]]:
    """The arguments each mail-host unit and Postfix's pipes (bounce, receive) give the app's CLI."""
    lines = [unit.exec_start for unit in mail_services.mail_units()]
    lines.append(_exec_start(render("postfix/postyard-rate-policy.service.j2")))
    lines.append(_exec_start(render("opendkim/postyard-dkim-sync.service.j2")))
    started = []
    for line in lines:
        words = shlex.split(line)
        assert words[:3] == [PYTHON, "-m", "app.mailhost"], line
        started.append(words[3:])
    pipes = [shlex.split(argv) for argv in re.findall(r"argv=(.*)$", render(
        "postfix/master.cf.j2", postfix.master_context(MAIL_DATA)), re.MULTILINE)]
    assert pipes and all(words[0] == LAUNCHER for words in pipes), pipes
    return [*started, *(words[1:] for words in pipes)]


def test_the_launcher_hands_each_mail_host_command_to_the_mail_host_entry():
    dispatched = re.search(r"^ +([\w|-]+)\) exec (.*) \"\$@\" ;;$", LAUNCHER_SCRIPT, re.MULTILINE)
    assert dispatched is not None
    assert sorted(dispatched.group(1).split("|")) == sorted(COMMANDS)
    assert dispatched.group(2) == MAILHOST_PROCESS


def test_a_mail_host_process_loads_neither_the_web_framework_nor_the_orm():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, app.mailhost.cli; from app.mailhost import rate_policy, dkim_sync; "
                               "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert not {"litestar", "advanced_alchemy", "sqlalchemy"} & set(loaded), loaded


def _loaded_by(module: str) -> set[str]:
    return set(subprocess.run(
        [sys.executable, "-c",
         f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"],
        capture_output=True, text=True, check=True).stdout.split())


def test_the_database_services_of_the_mail_host_load_neither_the_web_framework_nor_its_orm_layer():
    """They use SQLAlchemy's engine, but not Litestar, advanced-alchemy, pydantic nor the ORM models (about
    25 MiB a process)."""
    for module in ("app.mailhost.worker", "app.mailhost.log_follower", "app.mailhost.webhooks",
                   "app.mailhost.smtp_intake", "app.mailhost.bounce_pipe", "app.mailhost.receive_pipe"):
        loaded = _loaded_by(module)
        assert "sqlalchemy" in loaded, module
        assert not {"litestar", "advanced_alchemy", "pydantic", "jinja2"} & loaded, (module, loaded)


def _environment(rendered: str) -> dict[str, str]:
    """The variables an environment file or a unit's Environment= lines set."""
    pairs = [line.removeprefix("Environment=") for line in rendered.splitlines()
             if line.startswith(("Environment=", "POSTYARD_", "PGSSL"))]
    return dict(pair.split("=", 1) for pair in pairs)


def test_every_mail_host_process_is_started_through_a_command_of_the_app_cli():
    parser = argparse.ArgumentParser()
    add_mailhost_commands(parser.add_subparsers(dest="command", required=True))
    started = _started_commands()
    assert sorted(parser.parse_args(args).command for args in started) == sorted(COMMANDS)


def test_the_rate_policy_reads_its_deployed_settings_through_the_app_settings():
    environment = _environment(render("postfix/postyard-rate-policy.service.j2"))
    settings = Settings.from_env(environment)
    assert settings.policy_socket == POLICY_SOCKET
    assert settings.submission_messages_per_minute == MAIL_DATA.postfix_user_message_rate


def test_the_dkim_sync_reads_its_deployed_settings_through_the_app_settings():
    environment = _environment(render("opendkim/dkim-sync.env.j2",
                                      opendkim.sync_env_context(MAIL_LOGIN.libpq_url(), DATA_KEYS)))
    settings = Settings.from_env(environment)
    assert settings.dkim_database_url == MAIL_LOGIN.libpq_url()
    assert settings.dkim_dir == DKIM_DIR
    assert settings.opendkim_pid.split(",") == [i.pid_file for i in opendkim.INSTANCES]
    assert settings.dkim_poll_seconds == 60
    assert list(settings.data_keys) == ["k1"] and settings.active_data_key_id == "k1"


def test_every_variable_the_mail_host_units_set_is_a_setting():
    rendered = [render("postfix/postyard-rate-policy.service.j2"),
                render("opendkim/dkim-sync.env.j2", opendkim.sync_env_context(MAIL_LOGIN.libpq_url(), DATA_KEYS))]
    names = {name for text in rendered for name in _environment(text)}
    names |= {entry.split("=", 1)[0] for unit in mail_services.mail_units() for entry in unit.environment}
    fields = {f"POSTYARD_{field.upper()}" for field in Settings.__struct_fields__} | {"POSTYARD_DATA_KEYS"}
    assert {n for n in names if n.startswith("POSTYARD_")} - NOT_SETTINGS <= fields
