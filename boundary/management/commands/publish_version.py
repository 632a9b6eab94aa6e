from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.artifacts import PublishFailed, configured_store, publish
from boundary.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Publish versions to the artefact store (VALENCE_ARTIFACT_STORE) from their folders on "
        "this host: for versions made before the store was configured."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("versions", type=int, nargs="+")

    def handle(self, *args: Any, versions: list[int], **options: Any) -> None:
        store = configured_store()
        if store is None:
            raise CommandError("VALENCE_ARTIFACT_STORE is not set: there is nowhere to publish")
        models = list(ModelVersion.objects.filter(pk__in=versions).order_by("pk"))
        missing = set(versions) - {model.pk for model in models}
        if missing:
            raise CommandError(f"no model version {', '.join(map(str, sorted(missing)))}")
        for model in models:
            folder = Path(model.artifact_path)
            if not model.artifact_path or not folder.is_dir():
                raise CommandError(f"v{model.pk} has no artefact on this host ({folder})")
            try:
                manifest = publish(store, model.pk, folder)
            except PublishFailed as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"v{model.pk}: {len(manifest['files'])} files to {store.url}")
