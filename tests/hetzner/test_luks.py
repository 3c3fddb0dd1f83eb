"""The LUKS role's script against a loop device: LUKS2, opens with the key, refuses another, never reformats."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from postyard.secrets import SecretStore
from roles.luks import crypttab_line, format_script, prepare_script

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("cryptsetup") or not shutil.which("losetup"),
    reason="needs root, cryptsetup and losetup",
)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@pytest.fixture
def volume(tmp_path):
    """A 64 MiB loop device, a key made like the role makes it, and a unique mapping name."""
    image = tmp_path / "volume.img"
    with image.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    device = sh("losetup", "--find", "--show", str(image)).stdout.strip()
    name = f"pytest-{uuid.uuid4().hex[:8]}"
    key = tmp_path / "volume.key"
    key.write_bytes(SecretStore(tmp_path / "secrets").get_bytes("luks-db1.key", lambda: os.urandom(64)))
    try:
        yield device, key, name
    finally:
        sh("cryptsetup", "close", name, check=False)
        sh("losetup", "--detach", device, check=False)


def device_mapper_works() -> bool:
    """Opening a volume needs device-mapper, which containers often lack."""
    return os.geteuid() == 0 and shutil.which("dmsetup") is not None and \
        subprocess.run(["dmsetup", "version"], capture_output=True, check=False).returncode == 0


needs_dm = pytest.mark.skipif(not device_mapper_works(), reason="device-mapper is not available here")


def prepare(device: str, key: Path, name: str) -> None:
    sh("sh", "-c", prepare_script(device, str(key), name))


def format_once(device: str, key: Path) -> None:
    sh("sh", "-c", format_script(device, str(key)))


def test_the_volume_key_is_made_once_with_mode_0600(tmp_path):
    store = SecretStore(tmp_path / "secrets")
    key = store.get_bytes("luks-db1.key", lambda: os.urandom(64))
    assert store.path("luks-db1.key").stat().st_mode & 0o777 == 0o600 and len(key) == 64
    assert store.get_bytes("luks-db1.key", lambda: os.urandom(64)) == key


def test_the_volume_is_luks2_and_opens_with_its_key(volume):
    device, key, name = volume
    format_once(device, key)
    assert "Version:       \t2" in sh("cryptsetup", "luksDump", device).stdout
    sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(key), device)


def test_formatting_again_keeps_the_existing_header(volume):
    device, key, name = volume
    format_once(device, key)
    first = sh("cryptsetup", "luksUUID", device).stdout
    format_once(device, key)
    assert sh("cryptsetup", "luksUUID", device).stdout == first


def test_the_volume_refuses_a_wrong_key(volume, tmp_path):
    device, key, name = volume
    format_once(device, key)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(64))
    assert sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(wrong), device, check=False).returncode != 0


@needs_dm
def test_running_the_role_again_keeps_the_data(volume):
    device, key, name = volume
    prepare(device, key, name)
    first = sh("cryptsetup", "luksUUID", device).stdout
    marker = uuid.uuid4().hex
    mount = Path(f"/tmp/{name}")
    mount.mkdir()
    try:
        sh("mount", f"/dev/mapper/{name}", str(mount))
        (mount / "marker").write_text(marker)
        sh("umount", str(mount))
        sh("cryptsetup", "close", name)
        prepare(device, key, name)  # closed: opens again
        prepare(device, key, name)  # open: nothing to do
        assert sh("cryptsetup", "luksUUID", device).stdout == first
        sh("mount", f"/dev/mapper/{name}", str(mount))
        assert (mount / "marker").read_text() == marker
    finally:
        sh("umount", str(mount), check=False)
        mount.rmdir()


def test_crypttab_opens_the_volume_with_the_key_file():
    assert crypttab_line("pgdata", "/dev/sdb", "/etc/postyard/luks/pgdata.key") == \
        "pgdata /dev/sdb /etc/postyard/luks/pgdata.key luks,discard"
