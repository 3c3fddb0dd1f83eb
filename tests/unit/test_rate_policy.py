"""The per-login submission rate limit (a Postfix policy service), over its real unix socket."""

from __future__ import annotations

import asyncio

from app.mailhost.rate_policy import SlidingWindow, decide, serve

DATA_REQUEST = {"request": "smtpd_access_policy", "protocol_state": "DATA", "sasl_username": "pyd_a"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_login_gets_its_limit_then_a_4_7_1_deferral_until_the_window_moves():
    clock = Clock()
    window = SlidingWindow(3, 60, clock)
    assert [decide(DATA_REQUEST, window) for _ in range(3)] == ["DUNNO"] * 3
    refusal = decide(DATA_REQUEST, window)
    assert refusal.startswith("450 4.7.1 ") and "pyd_a" in refusal
    assert decide({**DATA_REQUEST, "sasl_username": "pyd_b"}, window) == "DUNNO"  # per login
    clock.now += 60
    assert decide(DATA_REQUEST, window) == "DUNNO"


def test_unauthenticated_or_other_requests_are_not_counted():
    window = SlidingWindow(1, 60, Clock())
    assert decide({**DATA_REQUEST, "sasl_username": ""}, window) == "DUNNO"
    assert decide({"request": "junk", "sasl_username": "pyd_a"}, window) == "DUNNO"
    assert window.events.get("pyd_a") is None


def test_the_service_answers_postfix_requests_on_its_socket(tmp_path):
    socket_path = tmp_path / "policy.sock"

    async def exchange() -> list[bytes]:
        server = asyncio.create_task(serve(socket_path, SlidingWindow(1, 60)))
        for _ in range(100):
            if socket_path.exists():
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        request = "".join(f"{k}={v}\n" for k, v in DATA_REQUEST.items()) + "\n"
        answers = []
        for _ in range(2):  # one connection carries several requests, as Postfix reuses it
            writer.write(request.encode())
            await writer.drain()
            answers.append(await reader.readuntil(b"\n\n"))
        writer.close()
        server.cancel()
        return answers

    first, second = asyncio.run(exchange())
    assert first == b"action=DUNNO\n\n"
    assert second.startswith(b"action=450 4.7.1 ")
