"""Apply to each host the roles of its inventory groups (postyard/topology.py), in order."""

from pyinfra import host

from postyard.topology import host_groups, roles_for_groups
from roles import ROLES

for role in roles_for_groups(host_groups(host.groups)):
    ROLES[role]()
