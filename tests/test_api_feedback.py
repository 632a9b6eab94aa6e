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


# --- no lost update across channels: the revision the feedback is based on ----------------------


def reviewed_call(user, **fields):
    """A call a reviewer has already corrected (revision 1)."""
    return BoundaryCallFactory(
        client=user,
        review_status="corrected",
        corrected_output=[FIXED],
        review_revision=1,
        reviewed_by=UserFactory(),
        **fields,
    )


def test_the_first_feedback_on_an_unreviewed_call_needs_no_revision(api, user):
    call = BoundaryCallFactory(client=user)
    response = feedback(api, call, {"verdict": "accept"})
    assert (response.status_code, response.json()["review_revision"]) == (200, 1)
    assert response["ETag"] == '"1"'


def test_feedback_on_a_reviewed_call_without_a_revision_is_refused(api, user):
    call = reviewed_call(user)
    response = feedback(api, call, {"verdict": "reject"})
    assert response.status_code == 428
    assert response.json()["error"]["code"] == "revision_required"
    assert response.json()["error"]["review_revision"] == 1
    call.refresh_from_db()
    assert (call.review_status, call.corrected_output) == ("corrected", [FIXED])


def test_a_stale_revision_is_a_conflict_and_the_correction_stays(api, user):
    call = reviewed_call(user)
    response = feedback(api, call, {"verdict": "reject", "revision": 0})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "stale_revision",
        "message": response.json()["error"]["message"],
        "review_revision": 1,
    }
    call.refresh_from_db()
    assert call.review_status == "corrected"


def test_the_current_revision_in_the_body_lets_the_feedback_through(api, user):
    call = reviewed_call(user)
    response = feedback(api, call, {"verdict": "accept", "revision": 1})
    assert (response.status_code, response.json()["review_revision"]) == (200, 2)


def test_the_revision_may_come_as_if_match(api, user):
    call = reviewed_call(user)
    response = api.post(
        f"/api/v1/calls/{call.pk}/feedback",
        {"quality_score": 0.2},
        format="json",
        HTTP_IF_MATCH='W/"1"',
    )
    assert response.status_code == 200


def test_a_stale_if_match_is_a_conflict(api, user):
    call = reviewed_call(user)
    response = api.post(
        f"/api/v1/calls/{call.pk}/feedback",
        {"quality_score": 0.2},
        format="json",
        HTTP_IF_MATCH='"0"',
    )
    assert response.status_code == 409


def test_a_malformed_if_match_is_a_400(api, user):
    call = reviewed_call(user)
    response = api.post(
        f"/api/v1/calls/{call.pk}/feedback",
        {"quality_score": 0.2},
        format="json",
        HTTP_IF_MATCH="abc",
    )
    assert response.status_code == 400
    assert "If-Match" in response.json()["error"]["fields"]


def test_a_revision_alone_is_not_feedback(api, user):
    response = feedback(api, BoundaryCallFactory(client=user), {"revision": 0})
    assert response.status_code == 400
