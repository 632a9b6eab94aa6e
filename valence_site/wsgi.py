import os

from django.core.wsgi import get_wsgi_application

from valence_site import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()  # before anything loads torch
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valence_site.settings")
django_application = get_wsgi_application()

from boundary.hot_routes import HotRoutes  # noqa: E402  (needs the apps loaded)

application = HotRoutes(django_application)


def _warm_active_models() -> None:
    """Load the active models in the background as this web process starts (boundary.warming),
    so that it is usually warm before its first request and before its first /readyz."""
    from django.conf import settings

    if settings.VALENCE_LOAD_IN_BACKGROUND:
        from boundary.warming import warm_active

        warm_active()


_warm_active_models()
