"""Apply to each host the roles of its inventory groups (postyard/topology.py).

One line per role: pyinfra orders operations by the line numbers they are called from, so each
role needs a call site of its own.
"""

from pyinfra import host

from postyard.connections import disable_nagle
from roles import (
    api,
    api_proxy,
    app_runtime,
    base,
    dovecot,
    etcd,
    firewall,
    host_report,
    load_balancer,
    luks,
    mail_services,
    opendkim,
    packages,
    patroni,
    pgbackrest,
    pgbackrest_member,
    pgbackrest_repository,
    postfix,
    postgresql,
    postgresql_backup,
    postgresql_router,
    redis,
    schema,
    tls,
)
from roles.support.peers import host_roles

disable_nagle(host)
wanted = host_roles()

if "base" in wanted:
    base.deploy_base()
if "firewall" in wanted:
    firewall.deploy_firewall()
if "luks" in wanted:
    luks.deploy_luks()
if "packages" in wanted:
    packages.deploy_packages()
if "postgresql_router" in wanted:
    postgresql_router.deploy_postgresql_router()
if "etcd" in wanted:
    etcd.deploy_etcd()
if "patroni" in wanted:
    patroni.deploy_patroni()
if "postgresql" in wanted:
    postgresql.deploy_postgresql()
if "postgresql_backup" in wanted:
    postgresql_backup.deploy_postgresql_backup()
if "pgbackrest" in wanted:
    pgbackrest.deploy_pgbackrest()
if "pgbackrest_member" in wanted:
    pgbackrest_member.deploy_pgbackrest_member()
# After every member's TLS server is up and the primary archives: it creates the stanza and takes a backup.
if "pgbackrest_repository" in wanted:
    pgbackrest_repository.deploy_pgbackrest_repository()
if "redis" in wanted:
    redis.deploy_redis()
# Before any api host asks ACME for the API's name, which ACME checks through the load balancer.
if "load_balancer" in wanted:
    load_balancer.deploy_load_balancer()
if "api_proxy" in wanted:
    api_proxy.deploy_api_proxy()
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
