from __future__ import annotations

import pytest

from boundary.models import BoundaryCall
from tests.factories import BoundaryCallFactory, UserFactory

pytestmark = pytest.mark.django_db

FIXED = {"subject": "Chris", "predicate": "prefers", "object": "modular architectures"}


def feedback(api, call, body):
    return api.post(f"/api/v1/calls/{call.pk}/feedback", body, format="json")


def test_it_stores_a_quality_score(api, user):
    call = BoundaryCallFactory(client=user)
    response = feedback(api, call, {"quality_score": 0.75})
    assert response.status_code == 200
    call.refresh_from_db()
    assert (call.quality_score, call.reviewed_by) == (0.75, user)
    assert call.reviewed_at is not None


def test_a_correction_is_stored_beside_the_original_output(api, user):
    call = BoundaryCallFactory(client=user)
    original = call.output
    feedback(api, call, {"corrected_triples": [FIXED]})
    call.refresh_from_db()
    assert call.output == original
    assert call.corrected_output == [FIXED]
    assert call.review_status == "corrected"


def test_a_recomposition_takes_a_corrected_text(api, user):
    call = BoundaryCallFactory(client=user, direction="recomposition", output="Chris likes.")
    feedback(api, call, {"corrected_text": "Chris prefers composable architectures."})
    call.refresh_from_db()
    assert call.corrected_output == "Chris prefers composable architectures."


def test_it_refuses_a_correction_of_the_wrong_kind(api, user):
    call = BoundaryCallFactory(client=user, direction="recomposition", output="Chris likes.")
    response = feedback(api, call, {"corrected_triples": [FIXED]})
    assert response.status_code == 400
    assert "corrected_triples" in response.json()["error"]["fields"]


@pytest.mark.parametrize("score", [-0.1, 1.5, "0.5", True, None])
def test_it_rejects_a_bad_quality_score(api, user, score):
    call = BoundaryCallFactory(client=user)
    response = feedback(api, call, {"quality_score": score})
    assert response.status_code == 400
    assert "quality_score" in response.json()["error"]["fields"]


def test_it_rejects_empty_feedback(api, user):
    response = feedback(api, BoundaryCallFactory(client=user), {})
    assert response.status_code == 400


def test_it_rejects_a_correction_that_also_rejects(api, user):
    call = BoundaryCallFactory(client=user)
    response = feedback(api, call, {"corrected_triples": [FIXED], "verdict": "reject"})
    assert response.status_code == 400


def test_a_verdict_sets_the_review_status(api, user):
    call = BoundaryCallFactory(client=user)
    feedback(api, call, {"verdict": "reject"})
    call.refresh_from_db()
    assert call.review_status == "rejected"


def test_a_client_cannot_touch_another_clients_call(api):
    call = BoundaryCallFactory(client=UserFactory())
    response = feedback(api, call, {"quality_score": 1.0})
    assert response.status_code == 404
    assert BoundaryCall.objects.get(pk=call.pk).quality_score is None


def test_staff_can_give_feedback_on_any_call(api, user):
    user.is_staff = True
    user.save()
    call = BoundaryCallFactory(client=UserFactory())
    assert feedback(api, call, {"quality_score": 1.0}).status_code == 200
