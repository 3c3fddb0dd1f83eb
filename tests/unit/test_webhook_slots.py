"""Webhook delivery slots: limits overall, per team and per endpoint, and slots given back."""

from __future__ import annotations

import uuid

from app.domain.webhooks.slots import Slots

TEAM, OTHER_TEAM = uuid.uuid4(), uuid.uuid4()
HOOK, SECOND_HOOK, OTHER_HOOK = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_an_endpoint_gets_no_more_than_its_slots_and_its_team_no_more_than_the_teams():
    slots = Slots(total=10, per_team=3, per_endpoint=2)
    taken = [slots.take(TEAM, HOOK) for _ in range(3)] + [slots.take(TEAM, SECOND_HOOK) for _ in range(2)]
    assert taken == [True, True, False, True, False]
    assert slots.full_endpoints() == [HOOK] and slots.full_teams() == [TEAM]


def test_another_teams_endpoint_still_gets_slots_when_one_team_is_full():
    slots = Slots(total=4, per_team=2, per_endpoint=2)
    assert slots.take(TEAM, HOOK) and slots.take(TEAM, HOOK)
    assert slots.take(OTHER_TEAM, OTHER_HOOK) and slots.take(OTHER_TEAM, OTHER_HOOK)
    assert slots.free == 0 and not slots.take(OTHER_TEAM, uuid.uuid4())


def test_a_slot_given_back_can_be_taken_again_and_leaves_no_count_behind():
    slots = Slots(total=1, per_team=1, per_endpoint=1)
    assert slots.take(TEAM, HOOK) and not slots.take(OTHER_TEAM, OTHER_HOOK)
    slots.give_back(TEAM, HOOK)
    assert slots.free == 1 and slots.full_teams() == [] and slots.full_endpoints() == []
    assert slots.take(OTHER_TEAM, OTHER_HOOK)
