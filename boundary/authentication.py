"""Token authentication that does not query the database on every request.

DRF's `TokenAuthentication` looks the token and its user up on every call: a query and two model
instances, a fifth of the time a request spends outside the model. Tokens change rarely, so each
process remembers a valid token's user for VALENCE_TOKEN_CACHE_SECONDS (5 s; 0 turns it off).
A deleted token or a deactivated user is refused at once by the process that made the change
(the signals below) and by every other process and host within that time. A token that is not
valid is never remembered: each attempt with it is checked against the database.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework import HTTP_HEADER_ENCODING
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

MAX_ENTRIES = 10_000  # beyond this many live tokens in one process, start over

_lock = threading.Lock()
_users: dict[str, tuple[float, Any, Token]] = {}  # key → (valid until, user, token)


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        ttl = settings.VALENCE_TOKEN_CACHE_SECONDS
        now = time.monotonic()
        cached = _remembered(key, now)
        if cached is not None:
            return cached
        user, token = super().authenticate_credentials(key)  # raises for a bad key or user
        if ttl:
            with _lock:
                if len(_users) >= MAX_ENTRIES:
                    _users.clear()
                _users[key] = (now + ttl, user, token)
        return user, token


def remembered_user(authorization: str) -> Any | None:
    """The user of `Authorization: Token <key>` if this process checked that token within
    VALENCE_TOKEN_CACHE_SECONDS, else None (boundary.hot_routes then lets DRF check it). Parsed
    as TokenAuthentication parses it: the keyword in any case, then exactly one key."""
    parts = authorization.encode(HTTP_HEADER_ENCODING).split()
    if len(parts) != 2 or parts[0].lower() != CachedTokenAuthentication.keyword.lower().encode():
        return None
    try:
        key = parts[1].decode()
    except UnicodeError:
        return None
    cached = _remembered(key, time.monotonic())
    return None if cached is None else cached[0]


def _remembered(key: str, now: float) -> tuple[Any, Token] | None:
    if not settings.VALENCE_TOKEN_CACHE_SECONDS:
        return None
    with _lock:
        cached = _users.get(key)
    if cached is None or cached[0] <= now:
        return None
    return cached[1], cached[2]


def forget() -> None:
    with _lock:
        _users.clear()


@receiver(post_delete, sender=Token, dispatch_uid="boundary.authentication.token_deleted")
@receiver(post_save, sender=Token, dispatch_uid="boundary.authentication.token_saved")
def _token_changed(**kwargs: object) -> None:
    forget()


@receiver(post_save, sender=get_user_model(), dispatch_uid="boundary.authentication.user_saved")
@receiver(post_delete, sender=get_user_model(), dispatch_uid="boundary.authentication.user_gone")
def _user_changed(**kwargs: object) -> None:
    forget()
