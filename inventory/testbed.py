"""The local testbed's hosts (POSTYARD_TESTBED names the testbed, "main" by default, or
several, comma-separated: each is its own environment).

Bring the testbed up first: `make up` (or `python -m postyard up`).
"""

import os

from postyard.testbed.inventory import testbed_groups

_groups = testbed_groups(os.environ.get("POSTYARD_TESTBED", "main"))

mail = _groups["mail"]
db = _groups["db"]
cache = _groups["cache"]
api = _groups["api"]
lb = _groups["lb"]
