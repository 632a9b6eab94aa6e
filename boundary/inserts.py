"""The stored call's INSERT, compiled once per process instead of once per request.

Every API request stores one BoundaryCall before it answers. `Model.objects.create` rebuilds
the same INSERT statement each time (the query, its compiler, the field list): about a third of
the write's cost on SQLite here, and the write is the largest part of what a request spends
around the model. The statement depends only on the model and the database backend, so it is
compiled once; each call only prepares its values with the fields' own `pre_save` and
`get_db_prep_save`, exactly as the ORM's compiler does, and runs in the caller's transaction:
autocommit commits it before the answer is sent, as before.

It skips Django's `pre_save`/`post_save` signals, so it is used only while nothing listens to
them for BoundaryCall; when something does, the ORM's `save()` runs instead.
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections, router
from django.db.models import Field, signals
from django.db.models.sql import InsertQuery

from boundary.models import BoundaryCall

_lock = threading.Lock()
_statements: dict[tuple[str, str], str] = {}


def insert_call(call: BoundaryCall) -> BoundaryCall:
    """Insert a new call (what `save()` would do) and set its primary key."""
    if not call._state.adding or call.pk is not None:
        raise ValueError("insert_call stores new calls only")
    if signals.pre_save.has_listeners(BoundaryCall) or signals.post_save.has_listeners(
        BoundaryCall
    ):
        call.save(force_insert=True)
        return call
    fields = _fields()
    call.review_priority = call.compute_review_priority()  # what BoundaryCall.save() adds
    raw = [field.pre_save(call, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in raw):
        # F(), a database default: SQL of its own, which the one compiled statement lacks.
        call.save(force_insert=True)
        return call
    alias = router.db_for_write(BoundaryCall, instance=call)
    connection = connections[alias]
    values = [
        field.get_db_prep_save(value, connection) for field, value in zip(fields, raw, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_statement(alias, connection.vendor), values)
        (pk,) = cursor.fetchone()
    call.pk = pk
    call._state.adding = False
    call._state.db = alias
    return call


def _fields() -> list[Field[Any, Any]]:
    return [field for field in BoundaryCall._meta.concrete_fields if not field.primary_key]


def _statement(alias: str, vendor: str) -> str:
    key = (alias, vendor)
    statement = _statements.get(key)
    if statement is None:
        with _lock:
            statement = _statements.get(key) or _compile(alias)
            _statements[key] = statement
    return statement


def _compile(alias: str) -> str:
    """The ORM's own INSERT … RETURNING for one row of every concrete field but the key."""
    query = InsertQuery(BoundaryCall)
    query.insert_values(_fields(), [BoundaryCall()])
    compiler = query.get_compiler(using=alias)
    compiler.returning_fields = [BoundaryCall._meta.pk]
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(_fields()):  # a default compiled into the SQL: values would not fit
        raise RuntimeError("the call INSERT needs one placeholder per field; save() instead")
    return str(sql)
