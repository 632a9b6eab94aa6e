from __future__ import annotations

import json
import os
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from valence_site.cli import main

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_create_token_creates_the_user_and_prints_a_working_token(client):
    key = run("create_token", "analytics-app")
    user = get_user_model().objects.get(username="analytics-app")
    assert Token.objects.get(user=user).key == key
    assert not user.has_usable_password()
    response = client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


def test_create_token_is_stable_until_rotated():
    first = run("create_token", "app")
    assert run("create_token", "app") == first
    assert run("create_token", "app", "--rotate") != first


def test_seed_demo_creates_the_logins_it_prints(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    output = run("seed_demo")
    token = Token.objects.get(user__username="demo")
    passwords = json.loads((tmp_path / "demo-logins.json").read_text())
    assert token.key in output
    for username in ("admin", "reviewer", "staff"):
        assert passwords[username] in output
        assert get_user_model().objects.get(username=username).check_password(passwords[username])


def test_seed_demo_gives_each_login_its_role(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    run("seed_demo")
    users = get_user_model().objects
    assert users.get(username="reviewer").has_perm("boundary.review_call")
    assert not users.get(username="reviewer").has_perm("boundary.promote_modelversion")
    assert users.get(username="staff").has_perm("boundary.promote_modelversion")
    assert users.get(username="staff").is_staff


def test_seed_demo_is_idempotent(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    run("seed_demo")
    run("seed_demo")
    assert get_user_model().objects.filter(username__in=["admin", "demo"]).count() == 2
    assert get_user_model().objects.get(username="reviewer").groups.count() == 1


def test_the_valence_script_accepts_dashed_command_names(capsys):
    main(["valence", "create-token", "dash-app"])
    assert len(capsys.readouterr().out.strip()) == 40


def test_the_valence_script_makes_openmp_threads_sleep_while_they_wait(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "")  # remembered, so the test leaves it as it was
    monkeypatch.delenv("OMP_WAIT_POLICY")
    main(["valence", "check"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_an_openmp_wait_policy_set_by_the_operator_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    main(["valence", "check"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
