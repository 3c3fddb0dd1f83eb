"""Teams, their members and roles, and per-team rate limits."""
