from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the local admin login and a demo API client; print how to use them."

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        password_file = settings.DATA_DIR / "admin-password.txt"
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("admin", password=password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n", encoding="utf-8")
            password_file.chmod(0o600)
        password = (
            password_file.read_text(encoding="utf-8").strip()
            if password_file.exists()
            else "(unchanged; set it with `valence changepassword admin`)"
        )
        demo, created = User.objects.get_or_create(username="demo")
        if created:
            demo.set_unusable_password()
            demo.save()
        token, _ = Token.objects.get_or_create(user=demo)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Valence Boundary is ready.",
                    "  Service:   http://127.0.0.1:8000/",
                    "  API docs:  http://127.0.0.1:8000/api/docs/",
                    f"  Admin:     http://127.0.0.1:8000/admin/  (user admin, password {password})",
                    f"  API token: {token.key}  (user demo)",
                    "",
                ]
            )
        )
