from __future__ import annotations

import json
import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

from boundary.models import BoundaryCall, Direction, ServedBy
from review.roles import REVIEWERS, STAFF, ensure_roles

# username → (group, staff flag for the admin, superuser)
LOGINS = {
    "admin": (None, True, True),
    "reviewer": (REVIEWERS, False, False),
    "staff": (STAFF, True, False),
}


class Command(BaseCommand):
    help = (
        "Create the local logins (admin, reviewer, staff) and a demo API client, optionally "
        "send some demo traffic through the cascade, and print how to use them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--traffic",
            type=int,
            default=0,
            help="Send up to N held-out example inputs through the cascade as the demo client "
            "(only as many as are missing), so the console and dashboards have live calls.",
        )

    def handle(self, *args: Any, traffic: int, **options: Any) -> None:
        ensure_roles()
        passwords = self._logins()
        demo, created = get_user_model().objects.get_or_create(username="demo")
        if created:
            demo.set_unusable_password()
            demo.save()
        token, _ = Token.objects.get_or_create(user=demo)
        sent = self._traffic(demo, traffic) if traffic else 0
        # bin/serve binds gunicorn to VALENCE_BIND; print the address it really serves on.
        base = f"http://{os.environ.get('VALENCE_BIND') or '127.0.0.1:8000'}"
        lines = [
            "",
            "Valence Boundary is ready.",
            f"  Service:     {base}/",
            f"  Review:      {base}/review/      (user reviewer, password {passwords['reviewer']})",
            f"  Dashboards:  {base}/dashboards/",
            f"  Models:      {base}/models/      (user staff, password {passwords['staff']})",
            f"  Admin:       {base}/admin/       (user admin, password {passwords['admin']})",
            f"  API docs:    {base}/api/docs/",
            f"  API token:   {token.key}  (user demo)",
        ]
        if sent:
            lines.append(f"  Demo traffic: {sent} calls sent through the cascade just now")
        self.stdout.write("\n".join([*lines, ""]))

    def _logins(self) -> dict[str, str]:
        """Passwords are generated once and kept (0600) in the data folder, so re-runs print
        the same ones; a password changed by hand is reported as such, never reset."""
        User = get_user_model()
        store = settings.DATA_DIR / "demo-logins.json"
        known = json.loads(store.read_text()) if store.exists() else {}
        legacy = settings.DATA_DIR / "admin-password.txt"
        if "admin" not in known and legacy.exists():
            known["admin"] = legacy.read_text(encoding="utf-8").strip()
        for username, (group, is_staff, is_superuser) in LOGINS.items():
            user = User.objects.filter(username=username).first()
            if user is None:
                known[username] = secrets.token_urlsafe(12)
                user = User.objects.create_user(
                    username,
                    password=known[username],
                    is_staff=is_staff,
                    is_superuser=is_superuser,
                )
            if group:
                user.groups.add(Group.objects.get(name=group))
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(known, indent=2) + "\n", encoding="utf-8")
        store.chmod(0o600)
        return {
            name: known.get(name, f"(unchanged; set it with `valence changepassword {name}`)")
            for name in LOGINS
        }

    def _traffic(self, client: AbstractBaseUser, wanted: int) -> int:
        from boundary import cascade
        from boundary.triples import parse_triples

        live = BoundaryCall.objects.exclude(served_by=ServedBy.IMPORTED).count()
        missing = max(0, wanted - live)
        examples = (
            BoundaryCall.objects.filter(served_by=ServedBy.IMPORTED, split="eval")
            .order_by("id")
            .values_list("direction", "input")[:missing]
        )
        sent = 0
        for direction, value in examples:
            try:
                if direction == Direction.DECOMPOSITION:
                    cascade.decompose(str(value), client=client)
                else:
                    cascade.recompose(parse_triples(value), client=client)
            except cascade.Unserved:
                pass  # stored anyway: an unserved call is part of the picture too
            sent += 1
        return sent
