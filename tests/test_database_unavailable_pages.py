"""Pages outside the API while the database cannot be reached: a 503 to retry, never a 500.

The database going away is simulated at the cursor (every query raises OperationalError, as
psycopg does while PostgreSQL restarts); tests/test_faults.py restarts a real server for the API.
"""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.db.backends import utils

from tests.factories import UserFactory


def failing_cursor(patch: pytest.MonkeyPatch, error: Exception) -> None:
    def refuse(*args, **kwargs):
        raise error

    patch.setattr(utils.CursorWrapper, "execute", refuse)
    patch.setattr(utils.CursorWrapper, "executemany", refuse)


@pytest.fixture
def broken_database(staff_client):
    """Call it to make every query fail; undone before the test database is torn down."""
    with pytest.MonkeyPatch.context() as patch:
        yield lambda error: failing_cursor(patch, error)


REFUSED = OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("path", ["/review/", "/dashboards/", "/models/", "/admin/"])
def test_a_page_answers_503_with_retry_after(staff_client, broken_database, path):
    broken_database(REFUSED)
    response = staff_client.get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Briefly unavailable" in response.content


def test_the_outage_is_logged_as_a_warning_with_its_cause(staff_client, broken_database, caplog):
    broken_database(REFUSED)
    with caplog.at_level(logging.INFO, logger="django.request"):
        staff_client.get("/dashboards/")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            "Service Unavailable: /dashboards/ (OperationalError: connection to server at "
            "127.0.0.1 failed: Connection refused)",
        )
    ]


def test_other_errors_are_still_server_errors(staff_client, broken_database):
    broken_database(RuntimeError("a bug"))
    with pytest.raises(RuntimeError):  # the test client re-raises what became a 500
        staff_client.get("/dashboards/")
