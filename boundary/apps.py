from django.apps import AppConfig


class BoundaryConfig(AppConfig):
    name = "boundary"
    verbose_name = "Boundary calls and models"

    def ready(self) -> None:
        from boundary import serving  # noqa: F401 - connects the registry cache's receivers
        from boundary.loaders import register_all

        register_all()
