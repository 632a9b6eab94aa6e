"""Who may do what: two groups, kept in step with the permissions after every migrate.

- Reviewers score and correct calls in the console and read the dashboards.
- Staff promote and roll back model versions (page and admin) and read everything.
Superusers can do everything. API tokens are per user and managed in the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required, permission_required

View = TypeVar("View", bound=Callable[..., Any])

REVIEWERS, STAFF = "Reviewers", "Staff"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWERS: [
        "boundary.review_call",
        "boundary.view_dashboards",
        "boundary.view_boundarycall",
    ],
    STAFF: [
        "boundary.promote_modelversion",
        "boundary.view_modelversion",
        "boundary.view_dashboards",
        "boundary.view_boundarycall",
        "boundary.view_versionevent",
        # The admin lists tokens through DRF's TokenProxy, which has permissions of its own.
        "authtoken.view_tokenproxy",
        "authtoken.add_tokenproxy",
        "authtoken.delete_tokenproxy",
    ],
}

REVIEW = "boundary.review_call"
DASHBOARDS = "boundary.view_dashboards"
PROMOTE = "boundary.promote_modelversion"
VIEW_VERSIONS = "boundary.view_modelversion"


def requires(permission: str) -> Callable[[View], View]:
    """A view decorator: anonymous visitors go to the login page, users without the permission
    get 403."""

    def decorate(view: View) -> View:
        return login_required(permission_required(permission, raise_exception=True)(view))

    return decorate


def ensure_roles(**kwargs: Any) -> None:
    """Create the groups and give them exactly their permissions (a post_migrate receiver)."""
    from django.contrib.auth.models import Group, Permission

    for name, permissions in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for dotted in permissions:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:  # an app not migrated yet: the next migrate adds it
                wanted.append(permission)
        group.permissions.set(wanted)
