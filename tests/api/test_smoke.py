"""Smoke."""


async def test_health_reports_database_and_redis_ok(client):
    response = await client.get("/health")
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_list_domains_with_key(client, team):
    response = await client.get("/domains", headers=team.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
