"""The Hetzner Cloud servers of one deployment, found by their labels through the Cloud API.

Reads HCLOUD_TOKEN, and POSTYARD_PROJECT / POSTYARD_ENVIRONMENT (default postyard / production);
POSTYARD_BASTION (user@host) connects over the private network through that host.
Bring the servers up first: `python -m postyard up --target hetzner`.
"""

from postyard.hetzner.inventory import hetzner_groups

_groups = hetzner_groups()

mail = _groups["mail"]
db = _groups["db"]
cache = _groups["cache"]
api = _groups["api"]
