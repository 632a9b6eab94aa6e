"""The people-facing pages in a real browser: Debian's chromium driven by Playwright, headless.

bin/test installs chromium (apt) when it is missing. Without it these tests skip, unless
VALENCE_REQUIRE_BROWSER=1 (CI sets it), where a missing browser is a failure. Screenshots
go to test-artifacts/ (VALENCE_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from boundary.models import BoundaryCall, ModelVersion, VersionEvent
from review.roles import REVIEWERS, STAFF
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PASSWORD = "correct horse battery staple"


def chromium_path() -> str | None:
    return os.environ.get("VALENCE_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        if os.environ.get("VALENCE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (VALENCE_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("Debian's chromium is not installed (bin/test installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls
    # (the test database set-up and the tests' own queries) unless told they are safe here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, live_server, request):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    artifacts = Path(
        os.environ.get("VALENCE_TEST_ARTIFACTS", Path(settings.BASE_DIR) / "test-artifacts")
    )
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
    context.close()


def login_user(username: str, group: str, **fields):
    user = UserFactory(username=username, **fields)
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name=group))
    return user


def log_in(page, username: str, path: str = "/accounts/login/") -> None:
    page.goto(path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login/" not in page.url, (page.url, page.locator("main").inner_html())


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_corrects_a_triple_and_scores_a_call_with_the_keyboard_only(page):
    login_user("rita", REVIEWERS)
    version = ModelVersionFactory(is_active=True)
    first = BoundaryCallFactory(
        input="Chris prefers composable architectures.",
        output=[{"subject": "Chris", "predicate": "prefers", "object": "architectures"}],
        served_by="student",
        model_version=version,
        confidence=0.2,
    )
    second = BoundaryCallFactory(served_by="student", model_version=version, confidence=0.4)

    log_in(page, "rita")
    page.goto("/review/")
    page.get_by_role("heading", name=f"Call #{first.pk}").wait_for()
    page.keyboard.press("e")  # focus the first field of the triple editor
    page.keyboard.press("Tab")  # predicate
    page.keyboard.press("Tab")  # object
    page.keyboard.press("Control+A")
    page.keyboard.type("composable architectures")
    page.keyboard.press("Control+Enter")  # save the correction; the next call opens
    page.get_by_role("heading", name=f"Call #{second.pk}").wait_for()
    page.keyboard.press("4")  # quality score 0.75
    page.get_by_text("Score saved.").wait_for()

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.review_status == "corrected"
    assert first.corrected_output == [
        {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}
    ]
    assert first.output[0]["object"] == "architectures"  # the original is kept
    assert second.quality_score == 0.75


@pytest.mark.django_db(transaction=True)
def test_the_keyboard_help_opens_with_a_question_mark(page):
    login_user("rita", REVIEWERS)
    BoundaryCallFactory()
    log_in(page, "rita")
    page.goto("/review/")
    page.keyboard.press("?")
    assert page.get_by_role("dialog", name="keyboard help").is_visible()


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_draws_its_charts_with_data(page):
    login_user("dana", REVIEWERS)
    version = ModelVersionFactory(is_active=True)
    for served, latency in [("student", 6.0), ("teacher", 900.0), ("student", 8.0)]:
        BoundaryCallFactory(
            served_by=served,
            model_version=version if served == "student" else None,
            latency_ms=latency,
            fallback_reason="" if served == "student" else "low_confidence",
            cost_usd=None if served == "student" else "0.001",
            review_status="accepted" if served == "student" else "unreviewed",
        )
    log_in(page, "dana")
    page.goto("/dashboards/?range=7d")
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-series]')]"
        ".every(c => c.dataset.rows && Chart.getChart(c))"
    )
    points = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('canvas[data-series]')].map("
        "c => [c.dataset.series, Chart.getChart(c).data.datasets"
        ".flatMap(d => d.data).filter(v => v !== null).length]))"
    )
    assert set(points) == {"volume", "fallback_rate", "latency", "spend", "review_outcomes"}
    assert all(count > 0 for count in points.values()), points
    heights = page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-series]')]"
        ".map(c => c.getBoundingClientRect().height)"
    )
    assert all(100 < height < 400 for height in heights), heights


@pytest.mark.django_db(transaction=True)
def test_a_dashboard_without_traffic_says_what_will_appear(page):
    login_user("dana", REVIEWERS)
    log_in(page, "dana")
    page.goto("/dashboards/?range=24h")
    page.wait_for_function("() => !document.querySelector('canvas[data-series]')")
    empty = page.locator(".chart .empty")
    assert empty.count() == 5
    assert "fills in as apps call the API" in empty.first.inner_text()


@pytest.mark.django_db(transaction=True)
def test_staff_promote_and_roll_back_in_admin_and_the_audit_log_shows_both(page):
    login_user("sam", STAFF, is_staff=True)
    old = ModelVersionFactory(is_active=True, metrics={"headline": 0.5})
    new = ModelVersionFactory(
        metrics={"headline": 0.7, "baseline": {"version": old.pk, "headline": 0.5}}
    )
    log_in(page, "sam", "/admin/login/?next=/admin/boundary/modelversion/")

    def run_action(action: str, reason: str) -> None:
        page.goto("/admin/boundary/modelversion/")
        page.locator(f"input[name=_selected_action][value='{new.pk}']").check()
        page.select_option("select[name=action]", action)
        page.get_by_role("button", name="Go").click()
        page.fill("textarea[name=reason]", reason)
        page.get_by_role("button", name=f"{action.capitalize()} v{new.pk}").click()
        page.wait_for_load_state()

    run_action("promote", f"beats v{old.pk} on the same eval set")
    assert ModelVersion.objects.get(pk=new.pk).is_active
    run_action("rollback", "reviewers saw regressions")
    assert ModelVersion.objects.get(pk=old.pk).is_active

    page.goto("/admin/boundary/versionevent/")
    log = page.locator("#result_list").inner_text().lower()
    assert "promote" in log and "rollback" in log and "reviewers saw regressions" in log
    assert list(VersionEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "promote",
        "rollback",
    ]
    assert BoundaryCall.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_staff_start_a_training_from_the_models_page(page):
    login_user("sam", STAFF)
    log_in(page, "sam", "/accounts/login/?next=/models/")
    page.goto("/models/")
    page.select_option("select[name=student]", "recomposition:generative")
    page.get_by_role("button", name="Train").click()
    page.wait_for_load_state()
    version = ModelVersion.objects.get()
    assert (version.direction, version.kind, version.status) == (
        "recomposition",
        "generative",
        "queued",
    )
    assert f"v{version.pk} queued" in page.locator("[role=status]").inner_text()
    assert "queued" in page.locator(f"#version-{version.pk}").inner_text()
