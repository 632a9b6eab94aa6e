"""The playground in a real browser (Debian's chromium, headless): htmx posts, panels swap in,
and the page fits a 1280×800 screen without scrolling sideways. Screenshots: test-artifacts/."""

from __future__ import annotations

import pytest

from boundary.models import BoundaryCall
from boundary.triples import Triple
from review.roles import REVIEWERS, STAFF
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedLoader, ScriptedStudent
from tests.test_browser import browser, log_in, login_user, page  # noqa: F401

LAPTOP = {"width": 1280, "height": 800}
FITS_WIDTH = "document.documentElement.scrollWidth <= 1280"
LONG_OBJECT = "a long list of composable architectures " * 8


def active(loader: ScriptedLoader, student: ScriptedStudent, **fields: object) -> None:
    version = ModelVersionFactory(**{"backend": "scripted", "is_active": True, **fields})
    loader.students[version.pk] = student


@pytest.mark.django_db(transaction=True)
def test_a_user_decomposes_a_text_and_sees_each_triples_stage(page, scripted_loader):  # noqa: F811
    login_user("uma", REVIEWERS)
    triples = [Triple("Chris", "prefers", LONG_OBJECT.strip())]
    active(scripted_loader, ScriptedStudent(triples, confidence=0.9))
    page.set_viewport_size(LAPTOP)
    log_in(page, "uma", "/accounts/login/?next=/playground/")
    page.goto("/playground/")
    page.fill("#playground-text", "Chris prefers a long list of composable architectures.")
    page.get_by_role("button", name="Decompose").click()
    call = page.locator("#result article.call")
    call.wait_for()
    assert call.get_attribute("data-served-by") == "student"
    assert "generative" in page.locator("table.answer tbody").inner_text()
    assert BoundaryCall.objects.get().origin == "playground"
    assert page.evaluate(FITS_WIDTH)


@pytest.mark.django_db(transaction=True)
def test_invalid_triples_show_an_error_without_leaving_the_page(page):  # noqa: F811
    login_user("uma", REVIEWERS)
    page.set_viewport_size(LAPTOP)
    log_in(page, "uma", "/accounts/login/?next=/playground/")
    page.goto("/playground/")
    page.fill("#playground-triples", '[{"subject": "Chris",}]')
    page.get_by_role("button", name="Recompose").click()
    alert = page.locator("#result [role=alert]")
    alert.wait_for()
    assert "This is not valid JSON" in alert.inner_text()
    assert page.locator("#playground-triples").input_value() == '[{"subject": "Chris",}]'
    assert not BoundaryCall.objects.exists()
    assert page.evaluate(FITS_WIDTH)


@pytest.mark.django_db(transaction=True)
def test_staff_compare_every_active_version_at_laptop_width(page, scripted_loader):  # noqa: F811
    login_user("sam", STAFF)
    sure = [Triple("Chris", "prefers", LONG_OBJECT.strip())]
    active(scripted_loader, ScriptedStudent([], confidence=0.1), kind="encoder")
    active(scripted_loader, ScriptedStudent(sure, confidence=0.9), kind="generative")
    page.set_viewport_size(LAPTOP)
    log_in(page, "sam", "/accounts/login/?next=/playground/")
    page.goto("/playground/")
    page.fill("#playground-text", "Chris prefers a long list of composable architectures.")
    page.get_by_role("button", name="Decompose").click()
    page.locator("table.compared").wait_for()
    assert page.locator("table.compared tbody tr").count() == 2
    # two stages, the memory lookup between them, and the total
    assert page.locator("table.timings tbody tr").count() == 4
    assert page.evaluate(FITS_WIDTH)
