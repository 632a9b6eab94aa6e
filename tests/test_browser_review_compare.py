"""The review console's student/teacher comparison and round trip in a real browser (Debian's
chromium, headless): differences are marked in words, and the item fits a 1280×800 screen
without scrolling sideways even with long triples. Screenshots: test-artifacts/."""

from __future__ import annotations

import pytest

from boundary.triples import Triple
from review.roles import REVIEWERS
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from tests.test_browser import browser, log_in, login_user, page  # noqa: F401
from training.models import LiveAudit

LAPTOP = {"width": 1280, "height": 800}
FITS_WIDTH = "document.documentElement.scrollWidth <= 1280"
LONG_OBJECT = ("a long list of composable architectures " * 8).strip()
PREFERS = Triple("Chris", "prefers", LONG_OBJECT)
WORKS_AT = Triple("Chris", "worksAt", "Valence")
HATES = Triple("Chris", "hates", "monoliths")


def as_json(*triples: Triple) -> list[dict[str, str]]:
    return [t.as_dict() for t in triples]


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_sees_what_only_the_student_and_only_the_teacher_said(page):  # noqa: F811
    login_user("rita", REVIEWERS)
    student = ModelVersionFactory(is_active=True)
    call = BoundaryCallFactory(
        input=f"Chris prefers {LONG_OBJECT} and works at Valence.",
        output=as_json(PREFERS, WORKS_AT),
        served_by="teacher",
        fallback_reason="low_confidence",
        diagnostics={
            "student_answer": {
                "version": student.pk,
                "confidence": 0.31,
                "output": as_json(PREFERS, HATES),
            }
        },
    )
    page.set_viewport_size(LAPTOP)
    log_in(page, "rita", "/accounts/login/?next=/review/")
    page.goto("/review/")
    page.get_by_role("heading", name=f"Call #{call.pk}").wait_for()

    diff = page.locator('table.diff[data-compare="triples"]')
    diff.wait_for()
    marks = diff.locator("tbody td.mark").all_inner_texts()
    assert marks == ["= same", "− only student", "+ only teacher"]
    assert "hates" in diff.locator('tr[data-diff="only_student"]').inner_text()
    assert "worksAt" in diff.locator('tr[data-diff="only_teacher"]').inner_text()
    assert page.evaluate(FITS_WIDTH)


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_sees_the_round_trip_of_an_audited_recomposition(page):  # noqa: F811
    login_user("rita", REVIEWERS)
    version = ModelVersionFactory(direction="recomposition", is_active=True)
    call = BoundaryCallFactory(
        direction="recomposition",
        input=as_json(PREFERS, WORKS_AT),
        output=f"Chris, who hates monoliths, prefers {LONG_OBJECT}.",
        served_by="student",
        model_version=version,
        confidence=0.3,
    )
    LiveAudit.objects.create(
        call=call,
        version=version,
        direction="recomposition",
        status=LiveAudit.Status.DONE,
        agreed=False,
        teacher_output=as_json(PREFERS, HATES),
    )
    page.set_viewport_size(LAPTOP)
    log_in(page, "rita", "/accounts/login/?next=/review/")
    page.goto("/review/")
    page.get_by_role("heading", name=f"Call #{call.pk}").wait_for()

    trip = page.locator("section.round-trip")
    trip.wait_for()
    assert "live audit" in trip.inner_text()
    assert trip.locator("[data-round-trip]").inner_text() == "✗ Does not agree"
    marks = trip.locator("span.mark").all_inner_texts()
    assert marks == ["✓ recalled", "✓ supported", "✗ missing", "+ extra"]
    assert page.evaluate(FITS_WIDTH)
