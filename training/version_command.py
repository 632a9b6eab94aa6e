"""What the commands that act on one registered version share: `--version N` and its lookup."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.models import ModelVersion


class VersionCommand(BaseCommand):
    """A command whose `--version N` names a model version, replacing Django's --version flag."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--version", type=int, required=True, help="ModelVersion id.")

    def model_version(self, pk: int) -> ModelVersion:
        version = ModelVersion.objects.filter(pk=pk).first()
        if version is None:
            raise CommandError(f"no model version {pk}")
        return version
