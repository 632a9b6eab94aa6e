from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.archive import ArchiveError, do_import_version


class Command(BaseCommand):
    help = (
        "Register an archive written by export-version as a new candidate version (never active), "
        "after checking every file against its sha256 and loading the model; the worker then "
        "evaluates it on this install's eval split before the gate will pass it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)

    def handle(self, *args: Any, archive: Path, **options: Any) -> None:
        if not archive.is_file():
            raise CommandError(f"{archive}: no such file")
        try:
            with archive.open("rb") as handle:
                version = do_import_version(
                    handle, filename=archive.name, size=archive.stat().st_size
                )
        except ArchiveError as exc:
            raise CommandError(f"{archive} was not imported: {exc}") from None
        self.stdout.write(
            f"v{version.pk} imported ({version.direction} {version.kind}, {version.backend}) as a "
            f"candidate; evaluation on the eval split is queued (or: valence evaluate-version "
            f"{version.pk})"
        )
