from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.archive import ArchiveError, do_export_version
from boundary.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Write a version's artefact and metadata (version.json: metrics, calibration, training "
        "config, the sha256 of every file) as a .tar.gz that import-version reads."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int)
        parser.add_argument(
            "--out", type=Path, help="File to write (default: valence-vN-DIRECTION-KIND.tar.gz)."
        )

    def handle(self, *args: Any, version: int, out: Path | None, **options: Any) -> None:
        model = ModelVersion.objects.filter(pk=version).first()
        if model is None:
            raise CommandError(f"no model version {version}")
        try:
            export = do_export_version(model)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None
        target = out or Path(export.filename)
        # Written beside the target and renamed: a failed export never leaves half an archive.
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as handle:
                export.write_to(handle)
            os.replace(partial, target)
        except (ArchiveError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"{target}: {exc}") from None
        size = target.stat().st_size
        self.stdout.write(f"v{version} exported to {target} ({size:,} bytes)")
