"""Postfix's maps as the mail-host sync renders and swaps them in: keys as each parameter looks them up."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from app.mailhost.postfix_maps import (
    BOUNCE_DOMAINS,
    BOUNCE_TRANSPORT,
    MAP_MODE,
    MAP_NAMES,
    RELOADED_FOR,
    SENDER_LOGINS,
    SENDER_TLS_TRANSPORT,
    SOURCE_MODE,
    SWAP_STAMP,
    BounceDomain,
    SenderLogin,
    render_maps,
    write_maps,
)

DOMAINS = [BounceDomain("bounces.shop.test", "shop.test", "opportunistic"),
           BounceDomain("rp.Secure.test", "Secure.test", "enforced")]
LOGINS = [SenderLogin("shop.test", "pyd_b"), SenderLogin("shop.test", "pyd_a"), SenderLogin("secure.test", "pyd_c"),
          SenderLogin("shop.test", "pyd_a")]


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_return_path_domains_are_relayed_and_routed_to_the_bounce_pipe_by_domain_name():
    maps = render_maps(DOMAINS, LOGINS)
    assert lines(maps[BOUNCE_DOMAINS]) == ["bounces.shop.test shop.test", "rp.secure.test secure.test"]
    assert lines(maps[BOUNCE_TRANSPORT]) == ["bounces.shop.test postyard-bounce:", "rp.secure.test postyard-bounce:"]


def test_sender_logins_are_keyed_by_at_domain_with_every_login_of_the_domain_comma_separated():
    assert lines(render_maps(DOMAINS, LOGINS)[SENDER_LOGINS]) == ["@secure.test pyd_c", "@shop.test pyd_a,pyd_b"]


def test_enforced_tls_covers_the_sending_domain_and_its_return_path_domain_only():
    assert lines(render_maps(DOMAINS, LOGINS)[SENDER_TLS_TRANSPORT]) == [
        "@rp.secure.test postyard-enforced:", "@secure.test postyard-enforced:"]


def test_nothing_to_route_renders_every_map_empty():
    assert render_maps([], []) == dict.fromkeys(MAP_NAMES, "")


def test_the_same_rows_in_another_order_render_the_same_bytes():
    assert render_maps(reversed(DOMAINS), reversed(LOGINS)) == render_maps(DOMAINS, LOGINS)


def copy_index(source: Path) -> None:
    """A stand-in for postmap: the 'cdb' holds the source text."""
    shutil.copyfile(source, source.with_name(source.name + ".cdb"))


def test_only_changed_maps_are_swapped_in_readable_by_postfix_alone_and_nothing_is_left_behind(tmp_path):
    maps = render_maps(DOMAINS, LOGINS)
    assert write_maps(maps, tmp_path, copy_index) == list(MAP_NAMES)
    assert write_maps(maps, tmp_path, copy_index) == []
    changed = render_maps(DOMAINS, LOGINS[:1])
    assert write_maps(changed, tmp_path, copy_index) == [SENDER_LOGINS]
    assert (tmp_path / f"{SENDER_LOGINS}.cdb").read_text() == "@shop.test pyd_b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*MAP_NAMES, *(f"{n}.cdb" for n in MAP_NAMES),
                                                                 SWAP_STAMP])
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.name != SWAP_STAMP} == {
        **{name: SOURCE_MODE for name in MAP_NAMES}, **{f"{name}.cdb": MAP_MODE for name in MAP_NAMES}}


def test_the_reload_stamp_changes_in_place_exactly_when_a_map_trivial_rewrite_reads_was_swapped_in(tmp_path):
    stamp = tmp_path / SWAP_STAMP
    maps = render_maps(DOMAINS, LOGINS)
    write_maps(maps, tmp_path, copy_index)
    first = stamp.read_text()
    assert first.split()[1:] == list(RELOADED_FOR)
    inode = stamp.stat().st_ino
    write_maps(maps, tmp_path, copy_index)
    assert stamp.read_text() == first  # nothing swapped in, no reload
    write_maps(render_maps(DOMAINS, LOGINS[:1]), tmp_path, copy_index)
    assert stamp.read_text() == first  # sender logins alone: smtpd reopens them itself
    write_maps(render_maps(DOMAINS[:1], LOGINS), tmp_path, copy_index)
    assert stamp.read_text().split()[1:] == [BOUNCE_DOMAINS, BOUNCE_TRANSPORT, SENDER_TLS_TRANSPORT]
    assert stamp.stat().st_ino == inode  # rewritten, not replaced: the path unit watches this file


def test_maps_swapped_in_before_a_failure_still_have_postfix_reload(tmp_path):
    write_maps(render_maps(DOMAINS, LOGINS), tmp_path, copy_index)
    calls: list[Path] = []

    def fails_second(source: Path) -> None:
        calls.append(source)
        if len(calls) == 2:
            raise OSError("postmap failed")
        copy_index(source)

    try:
        write_maps(render_maps(DOMAINS[:1], LOGINS), tmp_path, fails_second)
    except OSError:
        pass
    assert (tmp_path / SWAP_STAMP).read_text().split()[1:] == [BOUNCE_DOMAINS]


def test_a_failed_index_keeps_the_map_in_place_and_is_tried_again(tmp_path):
    maps = render_maps(DOMAINS, LOGINS)
    write_maps(maps, tmp_path, copy_index)

    def broken(source: Path) -> None:
        raise OSError("postmap failed")

    changed = render_maps(DOMAINS[:1], LOGINS)
    try:
        write_maps(changed, tmp_path, broken)
    except OSError:
        pass
    assert (tmp_path / f"{BOUNCE_DOMAINS}.cdb").read_text() == maps[BOUNCE_DOMAINS]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert write_maps(changed, tmp_path, copy_index)[0] == BOUNCE_DOMAINS
