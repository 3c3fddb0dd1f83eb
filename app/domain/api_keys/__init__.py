"""API keys (Resend's /api-keys)."""
