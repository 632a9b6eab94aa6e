from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BoundaryConfig(AppConfig):
    name = "boundary"
    verbose_name = "Boundary calls and models"

    def ready(self) -> None:
        from boundary import serving  # noqa: F401 - connects the registry cache's receivers
        from boundary.loaders import register_all

        register_all()
        post_migrate.connect(create_cache_table, sender=self)


def create_cache_table(using: str = "default", **kwargs: Any) -> None:
    """`migrate` also creates the database cache's table (a no-op for the other caches)."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
