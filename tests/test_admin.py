from __future__ import annotations

import pytest

from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_calls_are_browsable_with_filters(staff_client):
    version = ModelVersionFactory()
    BoundaryCallFactory(served_by="student", model_version=version, confidence=0.9)
    url = f"/admin/boundary/boundarycall/?served_by=student&model_version__id__exact={version.pk}"
    response = staff_client.get(url)
    assert response.status_code == 200
    assert b"1 boundary call" in response.content


def test_calls_are_searchable_by_input(staff_client):
    BoundaryCallFactory(input="Ada designed the analytical engine.")
    BoundaryCallFactory(input="Chris prefers tea.")
    response = staff_client.get("/admin/boundary/boundarycall/?q=analytical")
    assert b"1 boundary call" in response.content


def test_a_call_cannot_be_edited_in_admin(staff_client):
    call = BoundaryCallFactory()
    response = staff_client.post(
        f"/admin/boundary/boundarycall/{call.pk}/change/", {"latency_ms": 1}
    )
    assert response.status_code == 403


def test_admin_refuses_anonymous_users(client):
    response = client.get("/admin/boundary/boundarycall/")
    assert response.status_code == 302


def test_a_superuser_cannot_edit_what_the_gate_owns(staff_client):
    version = ModelVersionFactory(threshold=None, metrics={"calibration": {"calibrated": False}})
    form = {
        "direction": version.direction,
        "kind": version.kind,
        "backend": version.backend,
        "base_model": version.base_model,
        "is_active": "on",
        "status": "ready",
        "threshold": "0.1",
        "metrics": '{"calibration": {"calibrated": true}}',
    }
    response = staff_client.post(f"/admin/boundary/modelversion/{version.pk}/change/", form)
    assert response.status_code == 302  # saved: only the editable fields
    version.refresh_from_db()
    assert (version.is_active, version.threshold, version.is_calibrated) == (False, None, False)
