"""Sending domains, their DNS records and DKIM keys (Resend's /domains)."""
