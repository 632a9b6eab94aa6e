"""Every page and action of the console, dashboards and model page checks its role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from review.roles import REVIEWERS, STAFF
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def call():
    return BoundaryCallFactory()


@pytest.fixture
def version():
    return ModelVersionFactory(is_active=True)


# (method, url template, the group allowed)
ENDPOINTS = [
    ("get", "/review/", REVIEWERS),
    ("get", "/review/{call}/", REVIEWERS),
    ("post", "/review/{call}/act", REVIEWERS),
    ("get", "/dashboards/", REVIEWERS),
    ("get", "/dashboards/series/volume.json", REVIEWERS),
    ("get", "/dashboards/series/latency.csv", REVIEWERS),
    ("get", "/models/", STAFF),
    ("get", "/models/{version}/progress", STAFF),
    ("post", "/models/{version}/promote", STAFF),
    ("post", "/models/{version}/rollback", STAFF),
    ("post", "/models/train", STAFF),
    ("post", "/models/{version}/export", STAFF),
    ("post", "/models/import", STAFF),
]


def member(group: str):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=group))
    return user


def request(client, method, template, call, version):
    return getattr(client, method)(template.format(call=call.pk, version=version.pk))


@pytest.mark.parametrize(("method", "template", "_"), ENDPOINTS)
def test_anonymous_users_are_sent_to_log_in(client, call, version, method, template, _):
    response = request(client, method, template, call, version)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("method", "template", "_"), ENDPOINTS)
def test_a_user_without_any_role_is_refused(client, call, version, method, template, _):
    client.force_login(UserFactory())
    assert request(client, method, template, call, version).status_code == 403


@pytest.mark.parametrize(("method", "template", "allowed"), [e for e in ENDPOINTS if e[2] == STAFF])
def test_reviewers_cannot_manage_models(client, call, version, method, template, allowed):
    client.force_login(member(REVIEWERS))
    assert request(client, method, template, call, version).status_code == 403


@pytest.mark.parametrize(("method", "template"), [e[:2] for e in ENDPOINTS if "/review/" in e[1]])
def test_staff_cannot_review_calls(client, call, version, method, template):
    client.force_login(member(STAFF))
    assert request(client, method, template, call, version).status_code == 403


def test_staff_can_read_the_dashboards(client):
    client.force_login(member(STAFF))
    assert client.get("/dashboards/").status_code == 200


def test_the_review_console_opens_for_reviewers(client, call):
    client.force_login(member(REVIEWERS))
    assert client.get("/review/").status_code == 200


def test_a_rollback_refused_to_a_reviewer_changes_nothing(client, version):
    client.force_login(member(REVIEWERS))
    client.post(f"/models/{version.pk}/rollback", {"reason": "try"})
    version.refresh_from_db()
    assert version.is_active


def test_login_then_logout(client):
    user = UserFactory(username="rita")
    user.set_password("s3cret-pass")
    user.save()
    response = client.post("/accounts/login/", {"username": "rita", "password": "s3cret-pass"})
    assert response.status_code == 302
    assert client.get("/").wsgi_request.user.is_authenticated
    client.post("/accounts/logout/")
    assert not client.get("/").wsgi_request.user.is_authenticated


def test_the_home_page_shows_anonymous_visitors_no_traffic(client, call):
    page = client.get("/").content.decode()
    assert "Calls in the last 24 hours" not in page and "Active local models" not in page


def test_the_home_page_shows_reviewers_the_last_days_traffic(
    client, call, django_assert_max_num_queries
):
    client.force_login(member(REVIEWERS))
    with django_assert_max_num_queries(8):
        page = client.get("/").content.decode()
    assert "Calls in the last 24 hours" in page
    assert f"<td>{call.served_by}</td><td>1</td>" in page


def test_staff_manage_api_tokens_in_the_admin(client):
    from rest_framework.authtoken.models import Token

    user = member(STAFF)
    user.is_staff = True  # admin access; the group gives the token permissions
    user.save()
    app = UserFactory()
    client.force_login(user)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 200
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": app.pk})
    assert response.status_code == 302
    assert Token.objects.filter(user=app).exists()
