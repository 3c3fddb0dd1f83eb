"""pyinfra's SSH connections with Nagle's algorithm off.

pyinfra runs every fact and command as a request of its own on one SSH connection per host: a few
small writes, then a wait for the answer. paramiko leaves Nagle's algorithm on, so one of those
writes can wait for the peer's delayed acknowledgement (40 ms on Linux) before it leaves: on the
testbed a command took about 50 ms instead of 8. deploy.py turns it off for each host's
connection, which pyinfra has made by then and keeps for the whole run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from paramiko import Channel
from pyinfra.api.host import Host

__all__ = ["disable_nagle", "tcp_sockets"]


def tcp_sockets(sock: Any) -> Iterator[socket.socket]:
    """The TCP socket under an SSH transport's socket: itself, or through a ProxyJump channel, the
    jump host's connection."""
    while isinstance(sock, Channel):
        sock = sock.get_transport().sock
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        yield sock


def disable_nagle(host: Host) -> None:
    """Set TCP_NODELAY on the host's SSH connection, if it has one."""
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    for sock in tcp_sockets(getattr(transport, "sock", None)):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
