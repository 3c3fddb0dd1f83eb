"""Which sockets the deploy turns Nagle's algorithm off on."""

from __future__ import annotations

import socket

from postyard.connections import tcp_sockets


def test_a_tcp_connection_is_its_own_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        assert list(tcp_sockets(tcp)) == [tcp]


def test_other_transports_have_none():
    left, right = socket.socketpair()
    with left, right:
        assert list(tcp_sockets(left)) == []
    assert list(tcp_sockets(None)) == []
