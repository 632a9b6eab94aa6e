"""The artefact store (boundary.artifacts): a version published by one host, fetched and checked
by another. Each behaviour runs on both stores: a folder (a shared volume) and S3, a real
S3-compatible server (moto's) on loopback reached through boto3."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from django.core.management import call_command

from boundary import artifacts, cascade
from boundary.archive import do_export_version, do_import_version
from boundary.artifacts import ArtifactUnavailable, NotInStore, configured_store, local_artifact
from boundary.artifacts import publish as publish_to
from boundary.models import BoundaryCall
from boundary.students import load_student
from tests.anthropic_mock import tool_message
from tests.factories import ModelVersionFactory
from training.pipeline import queue_training, run_training

FILES = {"merged/config.json": b'{"layers": 2}', "merged/weights.bin": b"\x00\x01" * 5000}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with fake credentials in the environment."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "NO_PROXY": "127.0.0.1,localhost",
        }.items():
            patch.setenv(name, value)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture(params=["file", "s3"])
def store(request, settings, tmp_path):
    """This process's configured store, empty, and this host's own (empty) model folder."""
    settings.VALENCE_MODEL_DIR = tmp_path / "this-host"
    if request.param == "file":
        settings.VALENCE_ARTIFACT_STORE = f"file://{tmp_path / 'shared'}"
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"models-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        settings.VALENCE_ARTIFACT_STORE = f"s3://{bucket}/valence"
        settings.VALENCE_S3_ENDPOINT_URL = endpoint
    return configured_store()


def version_folder(root: Path) -> Path:
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_a_published_version_is_fetched_byte_for_byte_into_this_hosts_folder(
    store, settings, tmp_path
):
    publish_to(store, 7, version_folder(tmp_path / "trainer" / "v7"))
    folder = local_artifact(7, "/a/path/on/the/trainer/v7")
    assert folder == settings.VALENCE_MODEL_DIR / "v7"
    assert {n: (folder / n).read_bytes() for n in FILES} == FILES


def test_the_manifest_records_each_files_size_and_sha256(store, tmp_path):
    publish_to(store, 7, version_folder(tmp_path / "trainer" / "v7"))
    manifest = json.loads(store.get_bytes("v7/manifest.json"))
    assert manifest["files"]["merged/weights.bin"] == {
        "size": 10_000,
        "sha256": hashlib.sha256(FILES["merged/weights.bin"]).hexdigest(),
    }


def test_a_file_that_does_not_match_its_manifest_is_refused_and_nothing_is_kept(
    store, settings, tmp_path
):
    publish_to(store, 7, version_folder(tmp_path / "trainer" / "v7"))
    store.put_bytes("v7/merged/weights.bin", b"\x00\x02" * 5000)  # same size, other bytes
    with pytest.raises(ArtifactUnavailable, match="weights.bin .* does not match its manifest"):
        local_artifact(7, "")
    assert [p.name for p in settings.VALENCE_MODEL_DIR.iterdir()] == [".v7.lock"]


def test_a_version_missing_from_the_store_is_unavailable(store):
    with pytest.raises(NotInStore, match="v8 is not in the artefact store"):
        local_artifact(8, "/a/path/on/the/trainer/v8")


def test_a_copy_already_on_this_host_is_loaded_without_asking_the_store(store, settings):
    version_folder(settings.VALENCE_MODEL_DIR / "v9")
    assert local_artifact(9, "") == settings.VALENCE_MODEL_DIR / "v9"


def test_a_version_the_store_lacks_is_read_where_this_host_wrote_it(store, tmp_path):
    """Trained before the store was configured, on this very host."""
    written = version_folder(tmp_path / "older" / "v3")
    assert local_artifact(3, str(written)) == written


def test_without_a_store_the_recorded_path_is_loaded(settings):
    settings.VALENCE_ARTIFACT_STORE = ""
    assert local_artifact(4, "/shared/volume/v4") == Path("/shared/volume/v4")


@pytest.mark.django_db
def test_a_fetched_version_loads_from_this_hosts_copy(store, settings, tiny_base, tmp_path):
    trainer = tmp_path / "trainer" / "v1"
    shutil.copytree(tiny_base, trainer / "merged")
    version = ModelVersionFactory(backend="transformers", artifact_path="/not/on/this/host")
    publish_to(store, version.pk, trainer)
    student = load_student(version.student_spec())
    here = settings.VALENCE_MODEL_DIR / f"v{version.pk}" / "merged"
    assert student.generator.model_dir == here


@pytest.mark.django_db
def test_a_corrupt_copy_in_the_store_makes_the_llm_answer(store, tmp_path, teacher_api):
    version = ModelVersionFactory(backend="transformers", is_active=True, artifact_path="/gone")
    publish_to(store, version.pk, version_folder(tmp_path / "trainer"))
    store.put_bytes(f"v{version.pk}/merged/config.json", b'{"layers": 3}')
    triples = [{"subject": "Ana", "predicate": "uses", "object": "Vim"}]
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": triples}))
    call = cascade.decompose("Ana uses Vim.")
    assert (call.served_by, call.fallback_reason) == ("teacher", "student_error")
    assert "does not match its manifest" in call.diagnostics["student_errors"][0]["error"]


@pytest.mark.django_db
@pytest.mark.usefixtures("memorising_split")
@pytest.mark.parametrize("store", ["file"], indirect=True)  # the wiring, not the store, is tested
def test_a_training_publishes_its_artefact(store, tiny_setup):
    for split in ("train", "eval"):
        BoundaryCall.objects.create(
            direction="decomposition",
            input="Ana uses Vim.",
            input_hash=f"{split}:ana",
            output=[{"subject": "Ana", "predicate": "uses", "object": "Vim"}],
            served_by="teacher",
            split=split,
            latency_ms=800.0,
        )
    queued = queue_training(
        "decomposition", trigger="manual", config={"train": {"max_steps": 2}}, enqueue=False
    )
    version = run_training(queued.pk)
    assert version.status == "ready", version.training_run.error
    manifest = json.loads(store.get_bytes(f"v{version.pk}/manifest.json"))
    assert "merged/config.json" in manifest["files"]
    assert "published" in version.training_run.log


@pytest.mark.django_db
def test_an_imported_archive_is_published(store, settings, tiny_base, tmp_path):
    source = tmp_path / "elsewhere" / "v1"
    shutil.copytree(tiny_base, source / "merged")
    exported = ModelVersionFactory(backend="transformers", artifact_path=str(source))
    archive = tmp_path / "v1.tar.gz"
    with archive.open("wb") as out:
        do_export_version(exported).write_to(out)
    with archive.open("rb") as upload:
        imported = do_import_version(upload, filename=archive.name)
    manifest = json.loads(store.get_bytes(f"v{imported.pk}/manifest.json"))
    assert set(manifest["files"]) == {
        f"merged/{p.relative_to(source / 'merged').as_posix()}"
        for p in (source / "merged").rglob("*")
        if p.is_file()
    }


@pytest.mark.django_db
def test_a_version_exports_from_a_host_that_only_has_it_in_the_store(store, tiny_base, tmp_path):
    trainer = tmp_path / "trainer" / "v1"
    shutil.copytree(tiny_base, trainer / "merged")
    version = ModelVersionFactory(backend="transformers", artifact_path="/not/on/this/host")
    publish_to(store, version.pk, trainer)
    assert {f.name for f in do_export_version(version).files} >= {"artifact/merged/config.json"}


def test_a_refused_copy_is_not_downloaded_again_until_a_while_has_passed(
    store, monkeypatch, tmp_path
):
    trainer = version_folder(tmp_path / "trainer" / "v7")
    publish_to(store, 7, trainer)
    store.put_bytes("v7/merged/config.json", b'{"layers": 3}')
    with pytest.raises(ArtifactUnavailable):
        local_artifact(7, "")
    publish_to(store, 7, trainer)  # repaired
    with pytest.raises(ArtifactUnavailable, match="does not match its manifest"):
        local_artifact(7, "")  # still the remembered refusal
    monkeypatch.setattr(artifacts, "REFUSAL_TTL_S", 0.0)
    assert (local_artifact(7, "") / "merged/config.json").read_bytes() == b'{"layers": 2}'


@pytest.mark.django_db
@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_publish_version_uploads_a_version_made_before_the_store(store, tmp_path):
    version = ModelVersionFactory(artifact_path=str(version_folder(tmp_path / "older" / "v1")))
    out = io.StringIO()
    call_command("publish_version", str(version.pk), stdout=out)
    assert f"v{version.pk}: 2 files" in out.getvalue()
    assert store.get_bytes(f"v{version.pk}/manifest.json") is not None
