import sys

from postyard.cli import main

sys.exit(main())
