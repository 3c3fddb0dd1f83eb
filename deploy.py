"""Apply to each host the roles of its inventory groups (postyard/topology.py).

One line per role: pyinfra orders operations by the line numbers they are called from, so each
role needs a call site of its own.
"""

from pyinfra import host

from postyard.connections import disable_nagle
from postyard.topology import host_groups, roles_for_groups
from roles import (
    api,
    app_runtime,
    base,
    dovecot,
    firewall,
    host_report,
    luks,
    mail_services,
    opendkim,
    packages,
    pgbackrest,
    postfix,
    postgresql,
    postgresql_backup,
    redis,
    schema,
    tls,
)

disable_nagle(host)
wanted = roles_for_groups(host_groups(host.groups))

if "base" in wanted:
    base.deploy_base()
if "firewall" in wanted:
    firewall.deploy_firewall()
if "luks" in wanted:
    luks.deploy_luks()
if "packages" in wanted:
    packages.deploy_packages()
if "postgresql" in wanted:
    postgresql.deploy_postgresql()
if "postgresql_backup" in wanted:
    postgresql_backup.deploy_postgresql_backup()
if "pgbackrest" in wanted:
    pgbackrest.deploy_pgbackrest()
if "redis" in wanted:
    redis.deploy_redis()
if "tls" in wanted:
    tls.deploy_tls()
if "app_runtime" in wanted:
    app_runtime.deploy_app_runtime()
if "opendkim" in wanted:
    opendkim.deploy_opendkim()
if "schema" in wanted:
    schema.deploy_schema()
if "dovecot" in wanted:
    dovecot.deploy_dovecot()
if "postfix" in wanted:
    postfix.deploy_postfix()
if "mail_services" in wanted:
    mail_services.deploy_mail_services()
if "api" in wanted:
    api.deploy_api()
if "host_report" in wanted:
    host_report.deploy_host_report()
