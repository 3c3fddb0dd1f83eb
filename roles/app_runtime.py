"""The app's code on a host: a virtualenv from the locked wheels, the `app` package, a launcher.

The control machine downloads the pinned wheels once (pip, with constraints.txt) and uploads them;
hosts install from that wheelhouse only, so they need no package index and get exactly the
versions the tests ran. The wheels and the code each go up as one archive, unpacked only when
their digest changes (roles/support/stamps.py), so a deploy that changes nothing reads one stamp for each.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from functools import lru_cache
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from app.db import roles as db_roles
from app.mailhost.cli import COMMANDS as MAILHOST_COMMANDS
from postyard.topology import host_groups
from roles.support.archives import directory_archive, skip_bytecode
from roles.support.database_client import data_keys, database_login
from roles.support.inventory_secrets import INTERNAL_CA_PATH, secret
from roles.support.peers import environment_hosts, peers_by_group
from roles.support.stamps import unpack_once_for
from roles.support.system_users import declare_users

__all__ = [
    "APP_ROOT", "VENV", "LAUNCHER", "APP_ENV", "OWNER_ENV", "code_version", "release_digest", "CONTROL_ONLY",
    "app_settings",
    "render_env", "app_requirements", "pinned_requirements", "wheelhouse", "wheel_archive", "code_archive",
    "deploy_app_runtime", "packages",
]

REPO = Path(__file__).resolve().parents[1]
APP_ROOT = "/opt/postyard"
VENV = f"{APP_ROOT}/venv"
PYTHON = f"{VENV}/bin/python"
# A mail-host process (app/mailhost/cli.py): loads only its own modules.
MAILHOST_PROCESS = f"{PYTHON} -m app.mailhost"
SOURCE = f"{APP_ROOT}/src"
WHEELHOUSE = f"{APP_ROOT}/wheelhouse"
LAUNCHER = "/usr/local/bin/postyard-api"
WHEEL_CACHE = Path("/var/cache/postyard/wheelhouse")
# Debian 12's Python, which the hosts run the app on (environment markers are evaluated for it).
HOST_PYTHON = "3.11.2"
# Needed only below Python 3.11.3 (redis's marker), so the control machine's lock may lack it.
HOST_PYTHON_EXTRAS = "async-timeout==5.0.1\n"
# Dependencies of the deploy tooling, not of the app the hosts run.
CONTROL_ONLY = frozenset({"pyinfra", "jinja2", "hcloud"})
# Pure-Python dependencies published only as source: built into wheels here, so hosts still install wheels only.
SOURCE_ONLY = ("authheaders", "authres", "dkimpy", "pyspf")

APP_ENV = "/etc/postyard/app.env"
# The database owner's URL, on the schema host only (roles/schema.py), readable by root alone.
OWNER_ENV = "/etc/postyard/migrate.env"
LAUNCHER_SCRIPT = f"""#!/bin/sh
# The app's command line (see `postyard-api --help`), run from the deployed code with the host's
# settings (readable by root and the postyard group only; the owner's, on the schema host, by root only).
if [ -r {APP_ENV} ]; then set -a; . {APP_ENV}; set +a; fi
if [ -r {OWNER_ENV} ]; then set -a; . {OWNER_ENV}; set +a; fi
export PYTHONPATH={SOURCE}
case "$1" in
    {"|".join(MAILHOST_COMMANDS)}) exec {MAILHOST_PROCESS} "$@" ;;
esac
exec {PYTHON} -m app.cli "$@"
"""


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("python3-venv",)


def _requirement_name(requirement: str) -> str:
    for separator in "<>=!~[; ":
        requirement = requirement.split(separator, 1)[0]
    return requirement.strip().lower()


def app_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The project's runtime dependencies that the app itself imports."""
    declared = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return sorted(_requirement_name(r) for r in declared if _requirement_name(r) not in CONTROL_ONLY)


def pinned_requirements(names: list[str], constraints: str) -> str:
    """`name==version` lines for the names, with the versions constraints.txt locks."""
    locked = {}
    for line in constraints.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            locked[_requirement_name(name).replace("_", "-")] = version.strip()
    missing = [n for n in names if n.replace("_", "-") not in locked]
    if missing:
        raise DeployError(f"constraints.txt locks no version of {', '.join(missing)}")
    return "".join(f"{n}=={locked[n.replace('_', '-')]}\n" for n in names)


@lru_cache(maxsize=1)
def wheelhouse() -> tuple[Path, str]:
    """The directory of locked wheels on the control machine, and the requirements it satisfies."""
    constraints = (REPO / "constraints.txt").read_text()
    requirements = pinned_requirements(app_requirements(), constraints) + HOST_PYTHON_EXTRAS
    digest = hashlib.sha256((HOST_PYTHON + requirements + constraints).encode()).hexdigest()[:16]
    directory = WHEEL_CACHE / digest
    if not (directory / ".complete").exists():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "requirements.txt").write_text(requirements)
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(directory),
             "--constraint", str(REPO / "constraints.txt"), *SOURCE_ONLY],
            capture_output=True, text=True, check=False,
        )
        if built.returncode != 0:
            raise DeployError(f"building the app's source-only wheels failed: {built.stderr.strip()[-2000:]}")
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", HOST_PYTHON,
             "--dest", str(directory), "--find-links", str(directory), "--constraint", str(REPO / "constraints.txt"),
             "--requirement", str(directory / "requirements.txt")],
            capture_output=True, text=True, check=False,
        )
        if completed.returncode != 0:
            raise DeployError(f"downloading the app's wheels failed: {completed.stderr.strip()[-2000:]}")
        (directory / ".complete").write_text("")
    return directory, requirements


@lru_cache(maxsize=1)
def _code_digest() -> str:
    digest = hashlib.sha256(wheelhouse()[0].name.encode())
    for path in sorted((REPO / "app").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def code_version() -> str:
    """A digest of the code and wheels alone, the same on every host of one release (hosts' reports name it)."""
    return _code_digest()[:16]


def release_digest() -> str:
    """A digest of the code, wheels and settings this host runs the app with. Its units carry it, so
    a new release or a changed setting changes the unit files, which restarts them."""
    return hashlib.sha256((_code_digest() + render_env(app_settings())).encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def wheel_archive() -> Path:
    """The locked wheels as one tar archive, made once beside the wheelhouse directory."""
    directory, _ = wheelhouse()
    archive = directory.with_name(f"{directory.name}.tar")
    if not archive.exists():
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
        partial.write_bytes(directory_archive(directory, skip=lambda path: path.name == ".complete"))
        partial.replace(archive)
    return archive


@lru_cache(maxsize=1)
def code_archive() -> bytes:
    """The `app` package as one tar archive."""
    return directory_archive(REPO / "app", skip=skip_bytecode)


@deploy("App runtime")
def deploy_app_runtime() -> None:
    # The app's system user (sysusers.d(5): name, uid, description, home, shell).
    declare_users("postyard-app", [f"u postyard - - {APP_ROOT} /usr/sbin/nologin"])
    files.directory(name=f"Create {APP_ROOT}", path=APP_ROOT, user="root", group="root", mode="755")
    venv_missing = host.get_fact(File, path=f"{VENV}/bin/python") is None
    server.shell(
        name="Create the app's virtualenv", commands=[f"python3 -m venv {VENV}"], _if=lambda: venv_missing,
    )
    # Hosts install from the uploaded wheels only; the stamp lives in the virtualenv, so a new one
    # gets them again.
    unpack_once_for(
        "the locked wheels", wheel_archive(), WHEELHOUSE, stamp=f"{VENV}/postyard-wheels.applied",
        digest=wheelhouse()[0].name,
        then=f"{VENV}/bin/pip install --quiet --no-index --find-links {WHEELHOUSE} "
             f"--requirement {WHEELHOUSE}/requirements.txt",
    )
    code = code_archive()
    unpack_once_for(
        "the app's code", code, f"{SOURCE}/app", stamp=f"{SOURCE}/app.applied",
        digest=hashlib.sha256(code).hexdigest(),
    )
    files.put(name=f"Install {LAUNCHER}", src=StringIO(LAUNCHER_SCRIPT), dest=LAUNCHER, mode="755")
    files.put(
        name=f"Upload {APP_ENV}", src=StringIO(render_env(app_settings())), dest=APP_ENV,
        user="root", group="postyard", mode="640",
    )


def app_settings() -> dict[str, str]:
    """The app's settings on this host (POSTYARD_* variables, see app/config.py).

    The API connects as postyard_app, bound by row-level security. On mail hosts this file carries the
    bounce pipe's role (Postfix's pipe runs it through the launcher); each service unit reads its own
    role's URL from a file only root reads (roles/support/app_units.py). No host gets the owner's URL
    here: the schema host has it in OWNER_ENV.
    """
    groups = host_groups(host.groups)
    settings = {"POSTYARD_DATA_KEYS": data_keys(), "POSTYARD_MAIL_HOSTNAME": mail_hostname(),
                "POSTYARD_MAIL_HOSTNAMES": ",".join(mail_hostnames()), "PGSSLROOTCERT": INTERNAL_CA_PATH}
    if "api" in groups:
        settings["POSTYARD_DATABASE_URL"] = database_login(db_roles.APP).sqlalchemy_url()
        settings["POSTYARD_REDIS_URL"] = redis_url()
    if "mail" in groups:
        settings["POSTYARD_BOUNCE_DATABASE_URL"] = database_login(db_roles.BOUNCE).sqlalchemy_url()
    return {**settings, **{k: str(v) for k, v in (host.data.get("app_extra_settings") or {}).items()}}


def _own_mail_hostname(data: Any, name: str) -> str:
    """The name a mail host goes by (its greeting, its certificate's): `mail_hostname`, else its host name."""
    return data.get("mail_hostname") or data.get("hostname") or name


def mail_hostname() -> str:
    """`mail_hostname` when set, else this host's name when it is a mail host, else the environment's first
    mail host's."""
    if host.data.get("mail_hostname") or "mail" in host_groups(host.groups):
        return _own_mail_hostname(host.data, host.name)
    return mail_hostnames()[0]


def mail_hostnames() -> list[str]:
    """Every mail host's name in this host's environment, sorted: the names customers' return-path MX and
    SPF records point at, the same list on every api and mail host of the environment."""
    names = sorted({_own_mail_hostname(other.data, other.name) for other in environment_hosts("mail")})
    if not names and host.data.get("mail_hostname"):
        return [host.data.mail_hostname]  # mail hosts outside this inventory, named by `mail_hostname`
    if not names:
        raise DeployError(f"{host.name}: its environment has no mail host; set mail_hostname")
    return names


def redis_url() -> str:
    """Redis for the API: on this host over loopback, else the cache host over TLS (roles/redis.py
    speaks TLS exactly when an api host other than the cache host uses it)."""
    password = secret("redis-app")
    if "cache" in host_groups(host.groups) and not peers_by_group().get("api"):
        return f"redis://postyard:{password}@127.0.0.1:6379/0"
    address = "127.0.0.1" if "cache" in host_groups(host.groups) else peers_by_group().get("cache", [None])[0]
    if address is None:
        raise DeployError(f"{host.name} runs the API, but its environment has no cache host")
    return f"rediss://postyard:{password}@{address}:6379/0?ssl_ca_certs={INTERNAL_CA_PATH}"


def render_env(settings: dict[str, str]) -> str:
    """An environment file both systemd's EnvironmentFile and sh read the same way."""
    for name, value in settings.items():
        if any(c in value for c in " '\"$`\n\\#;&|<>()"):
            raise DeployError(f"the setting {name} holds a character an environment file cannot carry")
    return "# Managed by postyard (roles/app_runtime.py). Secrets: root and the postyard group only.\n" + "".join(
        f"{name}={value}\n" for name, value in settings.items())
