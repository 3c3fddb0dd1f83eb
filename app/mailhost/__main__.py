"""`python -m app.mailhost COMMAND`: one mail-host process (see app/mailhost/cli.py)."""

import sys

from app.mailhost.cli import main

sys.exit(main())
