"""`valence`: `python manage.py` from anywhere; dashed names work (`valence create-token`)."""

from __future__ import annotations

import os
import sys

from valence_site import prefer_sleeping_openmp_threads


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) > 1 and not argv[1].startswith("-"):
        argv[1] = argv[1].replace("-", "_")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valence_site.settings")
    prefer_sleeping_openmp_threads()
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:  # a set-up problem: one clear line, no traceback
        sys.exit(f"valence: {exc}")
