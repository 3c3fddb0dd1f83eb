"""Which database errors mean "try again" (503, a retry) rather than a fault of the request or the code."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from app.lib.api_error import database_unavailable


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _error(sqlstate: str) -> DBAPIError:
    return DBAPIError("INSERT INTO emails ...", {}, _Orig(sqlstate))


@pytest.mark.parametrize("sqlstate", ["08006", "53300", "57P01", "57P03", "57014", "25006"])
def test_an_outage_a_restart_an_overload_or_a_read_only_member_is_unavailable(sqlstate):
    assert database_unavailable(_error(sqlstate))


@pytest.mark.parametrize("sqlstate", ["23505", "22021", "42501", "40001", "XX000"])
def test_a_refused_value_a_missing_grant_or_a_bug_is_not(sqlstate):
    assert not database_unavailable(_error(sqlstate))


def test_a_refused_connection_is_unavailable():
    assert database_unavailable(ConnectionRefusedError()) and not database_unavailable(ValueError())
