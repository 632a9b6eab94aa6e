from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class ReviewConfig(AppConfig):
    name = "review"

    def ready(self) -> None:
        from review.roles import ensure_roles

        # post_migrate is sent per app with models, in INSTALLED_APPS order; "boundary" comes
        # after auth and authtoken, so every permission the roles use exists by then.
        post_migrate.connect(
            ensure_roles, sender=apps.get_app_config("boundary"), dispatch_uid="review.roles"
        )
