"""The review console through the Django test client: queue, claims, reviews, concurrency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from boundary.models import BoundaryCall
from review import queue
from review.roles import REVIEWERS
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def reviewer(username: str = "rita"):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=REVIEWERS))
    return user


@pytest.fixture
def rita(client):
    user = reviewer()
    client.force_login(user)
    return user


def local_call(confidence: float, **fields) -> BoundaryCall:
    version = fields.pop("model_version", None) or ModelVersionFactory(
        kind="generative", is_active=False
    )
    return BoundaryCallFactory(
        served_by="student", model_version=version, confidence=confidence, **fields
    )


def post(client, call, **data):
    data.setdefault("revision", call.review_revision)
    return client.post(f"/review/{call.pk}/act", data, HTTP_HX_REQUEST="true")


def test_the_queue_puts_disagreement_first_then_fallbacks_then_low_confidence(rita):
    sure = local_call(0.95)
    unsure = local_call(0.40)
    fallback = BoundaryCallFactory(fallback_reason="low_confidence")
    disagreement = BoundaryCallFactory(
        fallback_reason="low_confidence",
        diagnostics={"student_answer": {"version": 1, "confidence": 0.3, "output": []}},
    )
    imported = BoundaryCallFactory(served_by="imported")
    order = list(queue.review_queue(queue.QueueFilters()).values_list("pk", flat=True))
    assert order == [disagreement.pk, fallback.pk, unsure.pk, sure.pk, imported.pk]


def test_the_console_claims_the_first_item_for_its_reviewer(client, rita):
    call = local_call(0.2)
    response = client.get("/review/")
    assert response.status_code == 200
    assert f"Call #{call.pk}" in response.content.decode()
    call.refresh_from_db()
    assert call.claimed_by == rita and call.claimed_until > timezone.now()


def test_two_reviewers_never_get_the_same_item():
    first, second = local_call(0.2), local_call(0.3)
    anna, ben = reviewer("anna"), reviewer("ben")
    assert queue.claim_next(anna, queue.QueueFilters()).pk == first.pk
    assert queue.claim_next(ben, queue.QueueFilters()).pk == second.pk
    assert queue.claim_next(UserFactory(), queue.QueueFilters()) is None


def test_a_claim_lapses_after_its_timeout():
    call = local_call(0.2)
    anna, ben = reviewer("anna"), reviewer("ben")
    queue.claim(call.pk, anna)
    BoundaryCall.objects.filter(pk=call.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert queue.claim_next(ben, queue.QueueFilters()).pk == call.pk


def test_accepting_saves_the_verdict_and_score_and_moves_on(client, rita):
    call, following = local_call(0.2), local_call(0.3)
    response = post(client, call, action="accept", quality_score="0.75")
    assert response.status_code == 200
    call.refresh_from_db()
    assert (call.review_status, call.quality_score, call.reviewed_by) == ("accepted", 0.75, rita)
    assert call.claimed_by is None and call.review_revision == 1
    assert f"Call #{following.pk}" in response.content.decode()


def test_a_correction_is_stored_next_to_the_original(client, rita):
    call = local_call(0.2)
    original = call.output
    response = post(
        client,
        call,
        action="correct",
        subject=["Chris", ""],
        predicate=["prefers", ""],
        object=["modular architectures", ""],
    )
    assert response.status_code == 200
    call.refresh_from_db()
    assert call.output == original
    assert call.corrected_output == [
        {"subject": "Chris", "predicate": "prefers", "object": "modular architectures"}
    ]
    assert call.review_status == "corrected"


def test_an_invalid_triple_row_is_shown_in_the_editor_and_nothing_is_saved(client, rita):
    call = local_call(0.2)
    response = post(
        client, call, action="correct", subject=["Chris"], predicate=[""], object=["tea"]
    )
    assert response.status_code == 422
    assert 'data-path="rows.0.predicate"' in response.content.decode()
    call.refresh_from_db()
    assert call.review_status == "unreviewed" and call.corrected_output is None


def test_a_recomposition_is_corrected_as_text(client, rita):
    call = local_call(
        0.2,
        direction="recomposition",
        input=[{"subject": "Chris", "predicate": "prefers", "object": "tea"}],
        output="Chris likes coffee.",
    )
    post(client, call, action="correct", text="Chris prefers tea.")
    call.refresh_from_db()
    assert (call.output, call.corrected_output) == ("Chris likes coffee.", "Chris prefers tea.")


def test_a_stale_form_gets_a_clear_conflict_instead_of_overwriting(client, rita):
    call = local_call(0.2)
    stale_revision = call.review_revision
    other = reviewer("otto")
    from boundary.services import do_record_feedback

    do_record_feedback(call, verdict="reject", acting_user=other)
    response = post(client, call, action="accept", revision=stale_revision)
    assert response.status_code == 409
    assert "changed by otto" in response.content.decode()
    call.refresh_from_db()
    assert (call.review_status, call.reviewed_by) == ("rejected", other)


def test_an_item_claimed_by_someone_else_cannot_be_reviewed(client, rita):
    call = local_call(0.2)
    queue.claim(call.pk, reviewer("otto"))
    response = post(client, call, action="accept")
    assert response.status_code == 409
    assert "otto is reviewing" in response.content.decode()


def test_a_score_alone_keeps_the_reviewer_on_the_item(client, rita):
    call, _ = local_call(0.2), local_call(0.3)
    response = post(client, call, action="score", quality_score="1.0")
    call.refresh_from_db()
    assert call.quality_score == 1.0 and call.review_status == "unreviewed"
    assert f"Call #{call.pk}" in response.content.decode()


def test_filters_narrow_the_queue(client, rita):
    local_call(0.2, direction="recomposition", input=[], output="Some text.")
    wanted = local_call(0.3, input="Ana uses Vim daily.")
    page = client.get("/review/", {"direction": "decomposition", "q": "vim"}).content.decode()
    assert f"#{wanted.pk}" in page and page.count('class="status-unreviewed') == 1


def test_a_malformed_filter_is_ignored_not_an_error(client, rita):
    assert client.get("/review/", {"since": "yesterday", "version": "x"}).status_code == 200


def test_a_reviewed_correction_becomes_top_tier_training_data(client, rita):
    from training.datasets import TIER_CORRECTED, eligible_pairs

    call = local_call(0.2)
    post(client, call, action="correct", subject=["A"], predicate=["b"], object=["C"])
    [pair] = [p for p in eligible_pairs("decomposition") if p.call_id == call.pk]
    assert pair.tier == TIER_CORRECTED
