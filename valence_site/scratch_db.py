"""Scratch PostgreSQL databases for the benchmarks: created beside another, dropped after."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dj_database_url
from django.db import connection


@contextmanager
def scratch_database(suffix: str, *, server_url: str = "", keep: bool = False) -> Iterator[str]:
    """Yield the URL of a new, empty database `<name>_<suffix>`.

    On the server of `server_url` (a postgres:// URL) when given, else on the server of the
    configured database. Dropped on exit unless `keep`.
    """
    database = dj_database_url.parse(server_url) if server_url else connection.settings_dict
    name = f"{database['NAME']}_{suffix}"
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}"')
    _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield _url(database, name)
    finally:
        if not keep:
            _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(database: Mapping[str, Any], name: str) -> str:
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "localhost"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{name}"


def _admin(server_url: str, statement: str) -> None:
    """Run through the maintenance database: CREATE/DROP DATABASE need no transaction and
    the named database need not exist yet."""
    if not server_url:
        with connection._nodb_cursor() as cursor:  # as Django's test runner does
            cursor.execute(statement)
        return
    import psycopg

    database = dj_database_url.parse(server_url)
    with psycopg.connect(
        dbname="postgres",
        user=database.get("USER") or "postgres",
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or "localhost",
        port=database.get("PORT") or 5432,
        autocommit=True,
    ) as admin:
        admin.execute(statement)
