"""PostgreSQL login roles created in one operation, from one read of pg_roles.

pyinfra's `postgres.role` reads every role (a psql run, about 40 ms) once per role it checks; a host's
eleven roles made that most of a no-op deploy's time in the PostgreSQL role.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.postgres import PostgresRoles, make_execute_psql_command

__all__ = ["login_roles"]


@operation(is_idempotent=True)
def login_roles(roles: Sequence[str]) -> Generator[object, None, None]:
    """Each of `roles` exists and may log in; a missing one is created (without a password)."""
    existing = host.get_fact(PostgresRoles)
    for role in roles:
        if role not in existing:
            yield make_execute_psql_command(f'CREATE ROLE "{role}" LOGIN')
        elif not existing[role].get("canlogin"):
            yield make_execute_psql_command(f'ALTER ROLE "{role}" LOGIN')
