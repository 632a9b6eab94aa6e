"""Settings are checked the way an operator meets them: by starting the real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VALENCE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "VALENCE_SECRET_KEY": "p" * 30 + "roduction-secret-" + "k" * 30,
            "VALENCE_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_outside_debug(tmp_path):
    result = run_manage("check", env={"VALENCE_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "VALENCE_SECRET_KEY" in result.stderr


def test_debug_starts_without_a_secret_key(tmp_path):
    result = run_manage("check", env={"VALENCE_DEBUG": "1", "VALENCE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_a_malformed_knob_fails_loudly_with_its_name(tmp_path):
    result = run_manage(
        "check",
        env={"VALENCE_DEBUG": "1", "VALENCE_DATA_DIR": str(tmp_path), "VALENCE_MAX_TRIPLES": "x"},
    )
    assert result.returncode != 0
    assert "VALENCE_MAX_TRIPLES must be an integer" in result.stderr


def test_database_url_selects_postgresql(settings):
    import dj_database_url

    parsed = dj_database_url.parse("postgres://postgres@127.0.0.1:5432/valence")
    assert parsed["ENGINE"] == "django.db.backends.postgresql"


def test_collectstatic_builds_the_production_manifest(settings, tmp_path):
    """bin/serve runs this with the manifest storage: a vendored file that names a missing
    one (a source map, say) must fail here, not on a fresh machine."""
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/htmx-2.0.11.min.js" in manifest and "js/review.js" in manifest


def test_the_key_bin_serve_generated_is_found_from_any_shell(tmp_path):
    (tmp_path / "secret_key").write_text("g" * 64 + "\n")
    result = run_manage("check", env={"VALENCE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_the_cli_explains_a_missing_key_in_one_line(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VALENCE_", "DATABASE_URL"))}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("valence")), "create-token", "my-app"],
        cwd=tmp_path,
        env={**clean, "VALENCE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "bin/serve generates one" in result.stderr


def cache_backend(tmp_path, **env: str) -> str:
    script = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    result = run_manage(
        "shell",
        "--command",
        script,
        env={"VALENCE_DEBUG": "1", "VALENCE_DATA_DIR": str(tmp_path), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().rsplit(".", 1)[-1]


def test_every_web_process_shares_one_cache_whatever_the_database(tmp_path):
    # The throttle history lives there: a per-process cache multiplies the rate limit.
    assert cache_backend(tmp_path) == "FileBasedCache"
    postgres = "postgres://postgres@127.0.0.1:5432/valence"
    assert cache_backend(tmp_path, DATABASE_URL=postgres) == "DatabaseCache"
    assert cache_backend(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0") == "TolerantRedisCache"


@pytest.mark.django_db
def test_a_cache_entry_written_by_one_process_is_read_by_another():
    from django.core.cache import caches

    mine, another = caches.create_connection("default"), caches.create_connection("default")
    mine.set("shared", [1.0, 2.0], 60)
    assert another.get("shared") == [1.0, 2.0]


def test_an_artifact_store_that_is_not_a_folder_or_bucket_url_fails_loudly(tmp_path):
    result = run_manage(
        "check",
        env={
            "VALENCE_DEBUG": "1",
            "VALENCE_DATA_DIR": str(tmp_path),
            "VALENCE_ARTIFACT_STORE": "models/shared",  # relative, no scheme
        },
    )
    assert result.returncode != 0
    assert "VALENCE_ARTIFACT_STORE must be file:///absolute/path or s3://" in result.stderr
