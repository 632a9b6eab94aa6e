"""Export and import of model versions on the models page, in a real browser.

Same set-up as tests/test_browser.py (Debian's chromium through Playwright, headless; skipped
without it unless VALENCE_REQUIRE_BROWSER=1; screenshots in test-artifacts/).
"""

from __future__ import annotations

import shutil

import pytest

from boundary.models import ModelVersion
from review.roles import STAFF
from tests.factories import ModelVersionFactory
from tests.test_browser import browser, log_in, login_user, page  # noqa: F401
from training.models import TrainingRun

METRICS = {
    "headline": 0.812,
    "exact": {"f1": 0.815},
    "latency_p50_ms": 4.6,
    "calibration": {
        "calibrated": True,
        "target": 0.95,
        "ece": 0.035,
        "held_out": {
            "fallback_rate": 0.822,
            "agreement": 0.917,
            "agreement_interval": [0.879, 0.944],
            "answered": 278,
            "count": 1563,
        },
    },
}


@pytest.fixture
def exportable(settings, tmp_path, tiny_base) -> ModelVersion:
    """A ready version with a real (tiny) merged model on disk; uploads big enough for it."""
    settings.VALENCE_MODEL_DIR = tmp_path / "store"
    settings.VALENCE_MAX_REQUEST_BYTES = 8 * 1024**2
    folder = tmp_path / "trained" / "v1"
    shutil.copytree(tiny_base, folder / "merged")
    return ModelVersionFactory(
        backend="transformers", artifact_path=str(folder), metrics=METRICS, threshold=0.885
    )


def open_models_page(browser_page) -> None:
    login_user("sam", STAFF)
    log_in(browser_page, "sam", "/accounts/login/?next=/models/")
    browser_page.goto("/models/")


@pytest.mark.django_db(transaction=True)
def test_staff_export_a_version_and_import_it_back_as_a_candidate(page, exportable, tmp_path):  # noqa: F811
    open_models_page(page)
    with page.expect_download() as download:
        page.locator(f"#version-{exportable.pk}").get_by_role("button", name="Export").click()
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    assert archive.name == f"valence-v{exportable.pk}-decomposition-generative.tar.gz"

    page.set_input_files("input[name=archive]", str(archive))
    with page.expect_navigation():
        page.get_by_role("button", name="Import", exact=True).click()

    imported = ModelVersion.objects.exclude(pk=exportable.pk).get()
    assert f"v{imported.pk} imported from {archive.name}" in page.get_by_role("status").inner_text()
    row = page.locator(f"#version-{imported.pk}").inner_text()
    assert "imported" in row
    assert "0.812 at source, not evaluated here" in row


@pytest.mark.django_db(transaction=True)
def test_a_bad_archive_is_refused_on_the_page_with_its_reason(page, exportable, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    open_models_page(page)
    page.set_input_files("input[name=archive]", str(bad))
    with page.expect_navigation():
        page.get_by_role("button", name="Import", exact=True).click()
    assert "bad.tar.gz was not imported" in page.get_by_role("alert").inner_text()
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_models_page_fits_1280_by_800_without_horizontal_scrolling(page, exportable):  # noqa: F811
    """The widest rows the page has: an active version with every figure, an imported one the
    gate refuses at length, and a failed training with its error."""
    ModelVersion.objects.filter(pk=exportable.pk).update(is_active=True)
    ModelVersionFactory(
        kind="encoder",
        backend="onnx",
        threshold=None,
        artifact_path=exportable.artifact_path,
        metrics={
            "imported": {"file": "valence-v12-decomposition-encoder.tar.gz", "metrics": METRICS}
        },
    )
    failed = ModelVersionFactory(direction="recomposition", status="failed")
    TrainingRun.objects.create(
        version=failed,
        trigger="manual",
        status="failed",
        error="ValueError: no eligible recomposition training pairs in this installation",
    )
    open_models_page(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
