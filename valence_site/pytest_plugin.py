"""Loaded with `-p` (see pyproject) so it runs before pytest-django imports the settings.

Tests need a SECRET_KEY like production does; a conftest.py would be imported too late.
"""

import os

import pytest

os.environ.setdefault("VALENCE_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("VALENCE_HTTPS", "0")


def pytest_report_header(config: pytest.Config) -> str:
    from django.conf import settings

    database = settings.DATABASES["default"]
    return f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database.get('HOST') or ''}".strip()
