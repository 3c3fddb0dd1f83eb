"""The rules that keep a cached lookup from outliving a change."""

from __future__ import annotations

import time

from app.lib.notified_cache import NotifiedCache


def _listening(ttl: float = 5.0) -> NotifiedCache[str, int]:
    cache: NotifiedCache[str, int] = NotifiedCache(ttl)
    cache.set_listening(True)
    return cache


def test_a_value_is_kept_while_listening():
    cache = _listening()
    cache.put("key", 1, cache.generation)
    assert cache.get("key") == 1


def test_nothing_is_kept_or_served_while_not_listening():
    cache: NotifiedCache[str, int] = NotifiedCache(5.0)
    cache.put("key", 1, cache.generation)
    assert cache.get("key") is None
    listening = _listening()
    listening.put("key", 1, listening.generation)
    listening.set_listening(False)  # the LISTEN connection was lost: a change may go unheard
    assert listening.get("key") is None


def test_a_value_read_before_a_notification_is_not_kept_after_it():
    cache = _listening()
    generation = cache.generation  # the read begins
    cache.changed()  # a change commits while the read is under way
    cache.put("key", 1, generation)
    assert cache.get("key") is None


def test_a_notification_drops_every_value():
    cache = _listening()
    cache.put("a", 1, cache.generation)
    cache.put("b", 2, cache.generation)
    cache.changed()
    assert (cache.get("a"), cache.get("b")) == (None, None)


def test_a_value_expires_after_its_seconds():
    cache = _listening(ttl=0.05)
    cache.put("key", 1, cache.generation)
    time.sleep(0.06)
    assert cache.get("key") is None


def test_a_zero_ttl_keeps_nothing():
    cache = _listening(ttl=0)
    cache.put("key", 1, cache.generation)
    assert cache.get("key") is None
