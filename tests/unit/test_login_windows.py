"""The in-process sliding window used while Redis is down: slots are taken atomically and given back by name."""

from __future__ import annotations

from app.lib.anonymous_limits import subject_of
from app.lib.ratelimit import InProcessWindow


def test_a_window_takes_no_slot_once_any_of_its_keys_is_full():
    window = InProcessWindow()
    taken = [window.hit(["acct", "ip"], [2, 10], 60.0, add=True, member=f"m{i}").allowed for i in range(3)]
    assert taken == [True, True, False]
    assert window.hit(["ip"], [10], 60.0, add=False).remaining == 8  # the refused attempt took no address slot


def test_a_removed_slot_is_free_again_and_only_that_one():
    window = InProcessWindow()
    for member in ("failure", "success"):
        window.hit(["acct"], [2], 60.0, add=True, member=member)
    window.remove(("acct",), "success")
    assert window.hit(["acct"], [2], 60.0, add=True, member="next").allowed
    assert not window.hit(["acct"], [2], 60.0, add=True, member="over").allowed


def test_an_ipv6_client_is_counted_by_its_slash_64_and_an_ipv4_mapped_one_by_its_ipv4_address():
    assert subject_of("2001:db8:1:2:aaaa::1") == subject_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert subject_of("::ffff:192.0.2.7") == subject_of("192.0.2.7") == "192.0.2.7"
