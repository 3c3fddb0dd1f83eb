"""The mail-host processes, each started as `python -m app.mailhost COMMAND` (app/mailhost/cli.py)."""
