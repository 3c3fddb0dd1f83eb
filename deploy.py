"""Apply to each host the roles of its inventory groups (postyard/topology.py).

One line per role: pyinfra orders operations by the line numbers they are called from, so each
role needs a call site of its own.
"""

from pyinfra import host

from postyard.topology import host_groups, roles_for_groups
from roles import base, firewall, luks, postgresql, postgresql_backup, redis, tls

wanted = roles_for_groups(host_groups(host.groups))

if "base" in wanted:
    base.deploy_base()
if "firewall" in wanted:
    firewall.deploy_firewall()
if "luks" in wanted:
    luks.deploy_luks()
if "postgresql" in wanted:
    postgresql.deploy_postgresql()
if "postgresql_backup" in wanted:
    postgresql_backup.deploy_postgresql_backup()
if "redis" in wanted:
    redis.deploy_redis()
if "tls" in wanted:
    tls.deploy_tls()
