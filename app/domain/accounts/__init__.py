"""Users: registration, login with 2FA, sessions, password changes."""
