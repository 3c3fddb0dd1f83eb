"""The mail-host processes, each started by a command of `postyard-api` (app/mailhost/cli.py)."""
