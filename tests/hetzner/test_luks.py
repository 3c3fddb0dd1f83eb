"""The LUKS role's script against a loop device: LUKS2, opens with the key, refuses another, never reformats."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from roles.luks import crypttab_line, local_key_path, prepare_script

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
    key = local_key_path(tmp_path / "secrets", "db1.example.com")
    try:
        yield device, key, name
    finally:
        sh("cryptsetup", "close", name, check=False)
        sh("losetup", "--detach", device, check=False)


def prepare(device: str, key: Path, name: str) -> None:
    sh("sh", "-c", prepare_script(device, str(key), name))


def test_the_volume_key_is_made_once_with_mode_0600(tmp_path):
    key = local_key_path(tmp_path / "secrets", "db1")
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 64
    assert local_key_path(tmp_path / "secrets", "db1").read_bytes() == key.read_bytes()


def test_the_volume_is_luks2_and_opens_with_its_key(volume):
    device, key, name = volume
    prepare(device, key, name)
    assert "Version:       \t2" in sh("cryptsetup", "luksDump", device).stdout
    assert sh("blkid", "-o", "value", "-s", "TYPE", f"/dev/mapper/{name}").stdout.strip() == "ext4"
    sh("cryptsetup", "close", name)
    sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(key), device)


def test_the_volume_refuses_a_wrong_key(volume, tmp_path):
    device, key, name = volume
    prepare(device, key, name)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(64))
    assert sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(wrong), device, check=False).returncode != 0


def test_running_the_role_again_does_not_reformat(volume):
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
