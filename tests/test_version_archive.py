"""Exporting a model version as an archive and importing one as a candidate (boundary.archive),
from the service, the models page and the commands.

The artefact is real: the tiny random Llama of tests/tiny_models.py as a merged folder, served
by the transformers backend, so "it loads" is checked by the loader that serves it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from boundary import archive, loaders
from boundary.archive import ArchiveError, do_export_version, do_import_version
from boundary.models import ModelVersion, VersionEvent
from boundary.registry import gate_verdict
from boundary.students import load_student
from review.roles import REVIEWERS, STAFF
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory
from training.models import Evaluation

pytestmark = pytest.mark.django_db

METRICS = {
    "headline": 0.42,
    "headline_metric": "strict_f1",
    "calibration": {"calibrated": True, "threshold": 0.7, "target": 0.95, "ece": 0.03},
}


@pytest.fixture
def store(settings, tmp_path) -> Path:
    """An empty model store, and uploads large enough for the tiny model (about 0.5 MB)."""
    settings.VALENCE_MODEL_DIR = tmp_path / "store"
    settings.VALENCE_MAX_REQUEST_BYTES = 8 * 1024**2
    return settings.VALENCE_MODEL_DIR


@pytest.fixture
def source(tiny_base, tmp_path, store) -> ModelVersion:
    """A trained-looking version whose merged folder is the tiny random Llama."""
    folder = tmp_path / "elsewhere" / "v1"
    shutil.copytree(tiny_base, folder / "merged")
    return ModelVersionFactory(
        backend="transformers",
        artifact_path=str(folder),
        metrics=METRICS,
        threshold=0.7,
        expected_fallback_rate=0.25,
        train_count=120,
        eval_count=12,
    )


def exported(version: ModelVersion) -> bytes:
    return b"".join(do_export_version(version).chunks())


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def repack(data: bytes, change: Callable[[list[tuple[tarfile.TarInfo, bytes]]], None]) -> bytes:
    """The archive `data` with its (member, content) list edited by `change`."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        entries = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    change(entries)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, content in entries:
            info.size = len(content) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return out.getvalue()


def edit_manifest(data: bytes, edit: Callable[[dict], None]) -> bytes:
    def change(entries):
        info, content = entries[0]
        manifest = json.loads(content)
        edit(manifest)
        entries[0] = (info, json.dumps(manifest).encode())

    return repack(data, change)


def import_bytes(data: bytes, name: str = "model.tar.gz") -> ModelVersion:
    return do_import_version(io.BytesIO(data), filename=name, size=len(data))


def assert_nothing_registered(store: Path, before: int) -> None:
    assert ModelVersion.objects.count() == before
    assert not VersionEvent.objects.filter(action="import").exists()
    assert list(store.iterdir()) == []  # no version folder, no staging folder


def member(group: str):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=group))
    return user


# --- Export ---


def test_an_export_holds_the_manifest_first_and_each_served_file_with_its_sha256(source):
    data = exported(source)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
    manifest = json.loads(members(data)["version.json"])
    assert names[0] == "version.json"
    assert set(names[1:]) == set(manifest["files"])
    assert "artifact/merged/config.json" in manifest["files"]
    assert (manifest["format"], manifest["format_version"]) == ("valence-model-version", 1)
    assert manifest["version"]["metrics"] == METRICS
    assert manifest["version"]["threshold"] == 0.7


def test_an_export_is_logged_as_exported_with_its_file_name(source):
    do_export_version(source)
    event = VersionEvent.objects.get()
    assert (event.get_action_display(), event.version) == ("exported", source)
    assert event.reason == f"as valence-v{source.pk}-decomposition-generative.tar.gz"


def test_a_version_without_its_artefact_on_disk_cannot_be_exported(store):
    version = ModelVersionFactory(artifact_path=str(store / "gone"))
    with pytest.raises(ArchiveError, match="no merged artefact"):
        do_export_version(version)


def test_each_runtime_has_a_folder_that_an_archive_carries():
    assert set(archive.SERVED_FOLDERS) == set(loaders.RUNTIMES)


# --- Import ---


def test_a_round_trip_registers_a_new_candidate_with_the_same_metrics(source):
    imported = import_bytes(exported(source))
    assert imported.pk != source.pk
    assert (imported.status, imported.is_active) == ("ready", False)
    assert (imported.direction, imported.kind, imported.backend) == (
        "decomposition",
        "generative",
        "transformers",
    )
    record = imported.metrics["imported"]
    assert (record["metrics"], record["threshold"]) == (METRICS, 0.7)
    assert (record["file"], record["source_version"]) == ("model.tar.gz", source.pk)


def test_an_imported_artefact_lives_in_the_store_and_generates_as_the_source_did(source, store):
    imported = import_bytes(exported(source))
    assert Path(imported.artifact_path) == store / f"v{imported.pk}"
    prompt = "Text: Alan Bean was born in Texas.\nTriples:\n"
    ours, theirs = (load_student(v.student_spec()).generator for v in (imported, source))
    assert ours.generate(prompt, 8).text == theirs.generate(prompt, 8).text


def test_an_import_is_logged_as_imported_from_its_file(source):
    imported = import_bytes(exported(source), name="from-the-lab.tar.gz")
    event = VersionEvent.objects.get(action="import")
    assert (event.get_action_display(), event.version) == ("imported", imported)
    assert event.reason.startswith(f"from from-the-lab.tar.gz (v{source.pk} where it was exported")


def test_the_gate_refuses_an_imported_version_until_it_is_evaluated_here(source):
    imported = import_bytes(exported(source))
    verdict = gate_verdict(imported)
    assert not verdict.passed
    assert f"v{imported.pk} has no evaluation" in verdict.reasons


def test_the_worker_evaluates_an_imported_version_here_once_the_import_commits(
    source, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("django_q.conf.Conf.SYNC", True)  # the worker's task, run inline
    BoundaryCallFactory(split="eval", served_by="imported", input="Alan Bean was born in Texas.")
    with django_capture_on_commit_callbacks(execute=True):
        imported = import_bytes(exported(source))
    imported.refresh_from_db()
    assert imported.headline_metric is not None
    assert Evaluation.objects.get(version=imported).data_source == "eval split"
    assert imported.metrics["imported"]["metrics"] == METRICS  # where it came from stays
    assert f"v{imported.pk} has no evaluation" not in gate_verdict(imported).reasons


def test_evaluating_without_eval_data_here_leaves_it_refused(source):
    imported = import_bytes(exported(source))
    with pytest.raises(CommandError, match="stays unevaluated"):
        call_command("evaluate_version", imported.pk)


def test_the_active_version_is_never_re_evaluated():
    version = ModelVersionFactory(is_active=True)
    with pytest.raises(CommandError, match="serves"):
        call_command("evaluate_version", version.pk)


def test_a_file_that_does_not_match_its_sha256_is_refused_and_nothing_is_left(source, store):
    def corrupt(entries):
        for i, (info, content) in enumerate(entries):
            if info.name == "artifact/merged/config.json":
                entries[i] = (info, content.replace(b"{", b"[", 1))

    before = ModelVersion.objects.count()
    with pytest.raises(ArchiveError, match="config.json does not match its sha256"):
        import_bytes(repack(exported(source), corrupt))
    assert_nothing_registered(store, before)


def test_a_member_that_climbs_out_of_the_archive_is_refused(source, store, tmp_path):
    def climb(entries):
        info = tarfile.TarInfo("artifact/merged/../../../evil.txt")
        entries.append((info, b"owned"))

    before = ModelVersion.objects.count()
    with pytest.raises(ArchiveError, match="climbs out"):
        import_bytes(repack(exported(source), climb))
    assert not (tmp_path / "evil.txt").exists()
    assert_nothing_registered(store, before)


def test_an_absolute_member_name_is_refused(source, store):
    def absolute(entries):
        entries.append((tarfile.TarInfo("/tmp/evil.txt"), b"owned"))

    with pytest.raises(ArchiveError, match="absolute path"):
        import_bytes(repack(exported(source), absolute))


def test_a_symbolic_link_is_refused(source, store):
    def link(entries):
        info = tarfile.TarInfo("artifact/merged/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        entries.append((info, b""))

    with pytest.raises(ArchiveError, match="not a plain file"):
        import_bytes(repack(exported(source), link))


def test_a_file_not_listed_in_the_manifest_is_refused(source, store):
    def extra(entries):
        entries.append((tarfile.TarInfo("artifact/merged/extra.bin"), b"\0"))

    with pytest.raises(ArchiveError, match="extra.bin is not listed"):
        import_bytes(repack(exported(source), extra))


def test_a_listed_file_missing_from_the_archive_is_refused(source, store):
    def drop(entries):
        entries[:] = [e for e in entries if e[0].name != "artifact/merged/config.json"]

    with pytest.raises(ArchiveError, match="config.json is listed in version.json but not"):
        import_bytes(repack(exported(source), drop))


def test_another_format_version_is_refused(source, store):
    data = edit_manifest(exported(source), lambda m: m.update(format_version=2))
    with pytest.raises(ArchiveError, match="format version 2; this installation reads 1"):
        import_bytes(data)


def test_a_manifest_outside_the_schema_is_refused(source, store):
    data = edit_manifest(exported(source), lambda m: m["version"].update(direction="sideways"))
    with pytest.raises(ArchiveError, match="version.direction must be one of"):
        import_bytes(data)


def test_a_manifest_the_database_could_not_store_is_refused(source, store):
    data = edit_manifest(exported(source), lambda m: m["version"]["metrics"].update(note="a\0b"))
    with pytest.raises(ArchiveError, match="NUL character"):
        import_bytes(data)


def test_a_manifest_that_is_not_the_first_member_is_refused(source, store):
    data = repack(exported(source), lambda entries: entries.append(entries.pop(0)))
    with pytest.raises(ArchiveError, match="version.json must come first"):
        import_bytes(data)


def test_an_upload_larger_than_the_limit_is_refused_before_it_is_read(source, store, settings):
    settings.VALENCE_ARCHIVE_MAX_BYTES = 64 * 1024
    with pytest.raises(ArchiveError, match="the limit is 65,536"):
        import_bytes(exported(source))


def test_an_archive_that_unpacks_past_the_limit_is_refused(source, store, settings):
    def zeros(entries):  # 16 MB of zeros compress to a few kB
        entries.append((tarfile.TarInfo("artifact/merged/zeros.bin"), bytes(16 * 1024**2)))

    data = repack(exported(source), zeros)
    settings.VALENCE_ARCHIVE_MAX_BYTES = 2 * len(data)
    with pytest.raises(ArchiveError, match="unpacks to more than the limit"):
        import_bytes(data)
    assert list(store.iterdir()) == []


def test_an_artefact_the_loader_cannot_load_is_refused(source, store):
    def break_config(entries):
        for i, (info, _) in enumerate(entries):
            if info.name == "artifact/merged/config.json":
                entries[i] = (info, b"{}")

    def fix_sha(manifest):
        sha256 = hashlib.sha256(b"{}").hexdigest()
        manifest["files"]["artifact/merged/config.json"] = {"size": 2, "sha256": sha256}

    data = edit_manifest(repack(exported(source), break_config), fix_sha)
    before = ModelVersion.objects.count()
    with pytest.raises(ArchiveError, match="does not load on the transformers backend"):
        import_bytes(data)
    assert_nothing_registered(store, before)


def test_a_failure_while_registering_leaves_no_row_and_no_folder(source, store, monkeypatch):
    def fail(**fields):
        raise RuntimeError("database went away")

    data = exported(source)
    monkeypatch.setattr(VersionEvent.objects, "create", fail)
    before = ModelVersion.objects.count()
    with pytest.raises(RuntimeError):
        import_bytes(data)
    assert ModelVersion.objects.count() == before
    assert list(store.iterdir()) == []


# --- The models page ---


def test_staff_download_an_export_from_the_models_page(client, source):
    client.force_login(member(STAFF))
    response = client.post(f"/models/{source.pk}/export")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    filename = f"valence-v{source.pk}-decomposition-generative.tar.gz"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert "version.json" in members(b"".join(response.streaming_content))


def test_staff_import_an_archive_from_the_models_page_as_a_candidate(client, source):
    user = member(STAFF)
    client.force_login(user)
    upload = SimpleUploadedFile("lab.tar.gz", exported(source), content_type="application/gzip")
    response = client.post("/models/import", {"archive": upload})
    imported = ModelVersion.objects.latest("pk")
    assert response.status_code == 302
    assert (imported.pk != source.pk, imported.is_active, imported.created_by) == (
        True,
        False,
        user,
    )
    page = client.get("/models/").content.decode()
    assert f"v{imported.pk} imported from lab.tar.gz as a decomposition" in page
    assert "(0.420 at source, not evaluated here)" in page


def test_a_garbage_upload_is_a_400_that_says_why(client, store):
    client.force_login(member(STAFF))
    upload = SimpleUploadedFile("model.tar.gz", b"this is not a tarball")
    response = client.post("/models/import", {"archive": upload})
    assert response.status_code == 400
    assert "model.tar.gz was not imported: not a readable .tar.gz archive" in (
        response.content.decode()
    )
    assert not ModelVersion.objects.exists()


def test_an_import_without_a_file_is_a_400(client, store):
    client.force_login(member(STAFF))
    response = client.post("/models/import")
    assert response.status_code == 400
    assert "Choose a model archive" in response.content.decode()


def test_exporting_a_version_without_an_artefact_from_the_page_is_a_409(client, store):
    version = ModelVersionFactory(artifact_path=str(store / "gone"))
    client.force_login(member(STAFF))
    response = client.post(f"/models/{version.pk}/export")
    assert response.status_code == 409
    assert f"v{version.pk} cannot be exported" in response.content.decode()


@pytest.mark.parametrize("group", [REVIEWERS, None])
@pytest.mark.parametrize("url", ["/models/{pk}/export", "/models/import"])
def test_only_staff_export_and_import(client, source, group, url):
    client.force_login(member(group) if group else UserFactory())
    upload = SimpleUploadedFile("lab.tar.gz", exported(source))
    response = client.post(url.format(pk=source.pk), {"archive": upload})
    assert response.status_code == 403
    assert ModelVersion.objects.count() == 1


@pytest.mark.parametrize("url", ["/models/{pk}/export", "/models/import"])
def test_anonymous_visitors_are_sent_to_log_in(client, source, url):
    response = client.post(url.format(pk=source.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- The commands ---


def test_the_commands_export_a_version_to_a_file_and_import_it_back(source, tmp_path):
    out = tmp_path / "exported.tar.gz"
    call_command("export_version", source.pk, "--out", str(out), stdout=io.StringIO())
    call_command("import_version", str(out), stdout=io.StringIO())
    imported = ModelVersion.objects.latest("pk")
    assert imported.metrics["imported"]["file"] == "exported.tar.gz"
    assert not (tmp_path / "exported.tar.gz.part").exists()


def test_the_import_command_refuses_a_bad_archive_in_one_line(tmp_path, store):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(CommandError, match="bad.tar.gz was not imported: not a readable"):
        call_command("import_version", str(bad))


@pytest.mark.django_db
def test_the_archive_upload_may_be_larger_than_an_api_request(client, settings):
    settings.VALENCE_MAX_REQUEST_BYTES = 1024
    body = b"x" * 4096
    api = client.post("/api/v1/decompose", body, content_type="application/json")
    upload = client.post("/models/import", body, content_type="application/octet-stream")
    assert api.status_code == 413
    assert upload.status_code != 413  # the view decides (here: log in first)
