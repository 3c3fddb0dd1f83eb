"""Sending mail: POST /emails, the outbox and its worker."""
