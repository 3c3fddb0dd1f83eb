"""Postyard's HTTP API: a Litestar application."""
