"""Real services a test or a benchmark runs on this machine: PostgreSQL, and an SMTP sink standing in for Postfix."""
