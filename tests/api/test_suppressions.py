"""The suppression list: add, list, get and remove, one at a time or in batches, by id or address."""

from __future__ import annotations

import uuid


def address() -> str:
    return f"s{uuid.uuid4().hex[:8]}@example.org"


async def test_a_suppression_is_added_read_by_id_or_address_and_removed(client, team):
    email = address()
    created = await client.post("/suppressions", json={"email": email.upper(), "reason": "unsubscribe"},
                                headers=team.headers)
    by_id = (await client.get(f"/suppressions/{created.json()['id']}", headers=team.headers)).json()
    by_address = (await client.get(f"/suppressions/{email}", headers=team.headers)).json()
    removed = await client.delete(f"/suppressions/{email}", headers=team.headers)
    gone = await client.get(f"/suppressions/{email}", headers=team.headers)
    assert created.status_code == 201 and by_id == by_address
    assert by_id["email"] == email and by_id["reason"] == "unsubscribe" and by_id["created_at"]
    assert removed.json()["deleted"] is True and gone.status_code == 404


async def test_batches_add_and_remove_up_to_100(client, team):
    emails = [address() for _ in range(3)]
    added = await client.post("/suppressions/batch/add", json={"emails": emails}, headers=team.headers)
    ids = [item["id"] for item in added.json()["data"]]
    removed = await client.post("/suppressions/batch/remove", json={"ids": ids[:2]}, headers=team.headers)
    listed = (await client.get("/suppressions", headers=team.headers)).json()
    too_many = await client.post("/suppressions/batch/add", json={"emails": [address() for _ in range(101)]},
                                 headers=team.headers)
    assert added.status_code == 201 and len(removed.json()["data"]) == 2
    assert [s["email"] for s in listed["data"]] == [emails[2]] and too_many.status_code == 422


async def test_a_batch_with_an_invalid_address_adds_nothing(client, team):
    response = await client.post("/suppressions/batch/add", json={"emails": [address(), "nope"]},
                                 headers=team.headers)
    listed = (await client.get("/suppressions", headers=team.headers)).json()
    assert response.status_code == 422 and listed["data"] == []


async def test_the_list_filters_by_origin_and_pages(client, team):
    for reason in ("manual", "complaint", "hard_bounce"):
        await client.post("/suppressions", json={"email": address(), "reason": reason}, headers=team.headers)
    complaints = (await client.get("/suppressions?origin=complaint", headers=team.headers)).json()
    first = (await client.get("/suppressions?limit=2", headers=team.headers)).json()
    rest = (await client.get(f"/suppressions?limit=2&after={first['data'][-1]['id']}", headers=team.headers)).json()
    assert [s["reason"] for s in complaints["data"]] == ["complaint"]
    assert first["has_more"] is True and len(rest["data"]) == 1 and rest["has_more"] is False
