"""SMTP submission credentials, read by Dovecot and Postfix through views."""
