"""Model versions in and out of the registry as archives: export one, import one as a candidate.

An archive is a gzipped tar holding `version.json` (the manifest, always the first member) and
the files the version's runtime loads, under `artifact/`:

    version.json                      format, format_version, the version's metadata,
                                      its training config, and the size and sha256 of each file
    artifact/encoder/model.onnx       (encoder) or artifact/merged/... (transformers, mlx)
    ...                               or artifact/ort-genai/... (onnxruntime-genai)

Only the folder the runtime loads travels (see SERVED_FOLDERS): an ONNX version does not carry
the merged float32 weights it was exported from.

An import trusts nothing in the upload. It is read as a stream, member by member, and refused
(ArchiveError, nothing left behind) on the first thing out of place: another format version, a
manifest that does not match the schema, a name that is absolute or climbs out with `..`, a
link or device, a file missing from or absent in the manifest, a wrong size or sha256, more
than the size limit, or an artefact the student loader cannot load. What passes becomes a new
`ready` ModelVersion that is never active: the source's figures are kept under
`metrics["imported"]` but the gate only reads figures measured here, so until the worker has
evaluated it on this install's eval split (queued on commit) the gate refuses it as having no
evaluation, as it would any untested candidate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from boundary.artifacts import (
    ArtifactUnavailable,
    PublishFailed,
    file_sha256,
    local_artifact,
    publish_configured,
)
from boundary.jobs import model_job_options
from boundary.loaders import load_runtime
from boundary.models import (
    Direction,
    ModelBackend,
    ModelKind,
    ModelVersion,
    VersionEvent,
    VersionStatus,
)
from boundary.students import StudentSpec

FORMAT = "valence-model-version"
FORMAT_VERSION = 1
MANIFEST = "version.json"
ARTIFACT = "artifact"

# The folder of a version's artefact that its runtime loads (boundary.loaders), per kind and
# backend. A test keeps this in step with loaders.RUNTIMES.
SERVED_FOLDERS: dict[tuple[str, str], str] = {
    ("generative", "transformers"): "merged",
    ("generative", "onnx"): "ort-genai",
    ("generative", "mlx"): "merged",
    ("encoder", "onnx"): "encoder",
}

# Versions whose artefact is complete: trained, exported and evaluated (active ones are ready).
EXPORTABLE = (VersionStatus.READY, VersionStatus.RETIRED)

# An upload and what it unpacks to are each capped: a gzip of zeros unpacks a thousandfold.
# SmolLM2-135M merged in float32 is about 540 MB; the int8 encoder about 25 MB.
MAX_MEMBERS = 2_000
MAX_MANIFEST_BYTES = 4 * 1024**2
CHUNK = 1024 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")


class ArchiveError(Exception):
    """The archive cannot be exported or imported; the message says why, for staff to read."""


def max_archive_bytes() -> int:
    """The cap on an archive, packed or unpacked (VALENCE_ARCHIVE_MAX_BYTES, 2 GiB)."""
    return int(settings.VALENCE_ARCHIVE_MAX_BYTES)


# --- Export ---


@dataclass(frozen=True)
class ArtifactFile:
    name: str  # the member name: artifact/<folder>/<relative path>
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Export:
    """A download: its file name and the gzipped tar, produced chunk by chunk."""

    filename: str
    manifest: dict[str, Any]
    files: tuple[ArtifactFile, ...]

    def chunks(self) -> Iterator[bytes]:
        return _tar_gz(_manifest_bytes(self.manifest), self.files)

    def write_to(self, out: IO[bytes]) -> None:
        for chunk in self.chunks():
            out.write(chunk)


def export_filename(version: ModelVersion) -> str:
    return f"valence-v{version.pk}-{version.direction}-{version.kind}.tar.gz"


def do_export_version(version: ModelVersion, *, acting_user: Any = None) -> Export:
    """Hash the files of `version` that its runtime loads and log the export.

    The archive itself is produced lazily (`Export.chunks`), so a 500 MB model streams to the
    browser without being built in memory or on disk first.
    """
    if version.status not in EXPORTABLE:
        raise ArchiveError(f"v{version.pk} is {version.status}; only a finished version exports")
    folder = _served_folder(version.kind, version.backend)
    try:  # this host's copy (fetched from the artefact store when there is one)
        local = local_artifact(version.pk, version.artifact_path) if version.artifact_path else None
    except ArtifactUnavailable as exc:
        raise ArchiveError(str(exc)) from None
    root = local / folder if local else None
    if root is None or not root.is_dir():
        where = f" at {root}" if root else ""
        raise ArchiveError(f"v{version.pk} has no {folder} artefact on disk{where}")
    files = tuple(_artifact_files(root, f"{ARTIFACT}/{folder}"))
    if not files:
        raise ArchiveError(f"v{version.pk}'s artefact folder {root} is empty")
    export = Export(export_filename(version), build_manifest(version, files), files)
    user = acting_user if getattr(acting_user, "pk", None) else None
    VersionEvent.objects.create(
        action=VersionEvent.Action.EXPORT,
        version=version,
        actor=user,
        reason=f"as {export.filename}",
    )
    return export


def build_manifest(version: ModelVersion, files: tuple[ArtifactFile, ...]) -> dict[str, Any]:
    """What an importer needs to register the version and to check every byte it receives."""
    run = getattr(version, "training_run", None)  # the training app's row, if it was trained
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "version": {
            "id": version.pk,
            "direction": version.direction,
            "kind": version.kind,
            "backend": version.backend,
            "base_model": version.base_model,
            "metrics": version.metrics or {},
            "threshold": version.threshold,
            "expected_fallback_rate": version.expected_fallback_rate,
            "train_count": version.train_count,
            "eval_count": version.eval_count,
            "created_at": version.created_at.isoformat() if version.created_at else None,
        },
        "training": {"trigger": run.trigger, "config": run.config} if run is not None else None,
        "files": {f.name: {"size": f.size, "sha256": f.sha256} for f in files},
    }


def _artifact_files(root: Path, prefix: str) -> Iterator[ArtifactFile]:
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise ArchiveError(f"{path} is a symbolic link; an archive carries plain files only")
        if path.is_file():
            relative = path.relative_to(root).as_posix()
            yield ArtifactFile(f"{prefix}/{relative}", path, path.stat().st_size, file_sha256(path))


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")


def _tar_gz(manifest: bytes, files: tuple[ArtifactFile, ...]) -> Iterator[bytes]:
    """A POSIX tar, gzipped, written block by block: only one chunk is ever held in memory."""
    gzip = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    now = int(time.time())

    def header(name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, now, 0o644
        return info.tobuf(format=tarfile.PAX_FORMAT)

    def padding(size: int) -> bytes:
        return b"\0" * (-size % tarfile.BLOCKSIZE)

    yield gzip.compress(header(MANIFEST, len(manifest)) + manifest + padding(len(manifest)))
    for item in files:
        yield gzip.compress(header(item.name, item.size))
        written = 0
        with item.path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                written += len(chunk)
                yield gzip.compress(chunk)
        if written != item.size:  # changed since it was hashed: the importer would refuse it
            raise ArchiveError(f"{item.path} changed while it was being exported")
        yield gzip.compress(padding(item.size))
    yield gzip.compress(b"\0" * (2 * tarfile.BLOCKSIZE))  # the end-of-archive marker
    yield gzip.flush()


def _served_folder(kind: str, backend: str) -> str:
    folder = SERVED_FOLDERS.get((kind, backend))
    if folder is None:
        raise ArchiveError(f"no runtime serves a {kind} model on the {backend!r} backend")
    return folder


# --- Import ---


@dataclass(frozen=True)
class Manifest:
    """A validated version.json."""

    source_version: int | None
    direction: str
    kind: str
    backend: str
    base_model: str
    metrics: dict[str, Any]
    threshold: float | None
    expected_fallback_rate: float | None
    train_count: int
    created_at: str | None
    exported_at: str
    training: dict[str, Any] | None
    files: dict[str, tuple[int, str]]  # member name → (size, sha256)

    @property
    def folder(self) -> str:
        return SERVED_FOLDERS[(self.kind, self.backend)]

    def spec(self, artifact_path: Path) -> StudentSpec:
        return StudentSpec(
            version_id=self.source_version or 0,
            direction=self.direction,
            kind=self.kind,
            backend=self.backend,
            base_model=self.base_model,
            artifact_path=str(artifact_path),
        )


def do_import_version(
    archive: IO[bytes], *, filename: str, size: int | None = None, acting_user: Any = None
) -> ModelVersion:
    """Validate `archive`, register it as a new candidate and queue its evaluation here.

    The files are unpacked into a private folder inside VALENCE_MODEL_DIR and only moved to
    the version's own folder once every check has passed; any refusal or failure removes
    them, and the version row, its folder and its "imported" event are written together.
    """
    name = display_name(filename)
    limit = max_archive_bytes()
    if size is not None and size > limit:
        raise ArchiveError(f"the archive is {size:,} bytes; the limit is {limit:,}")
    store = Path(settings.VALENCE_MODEL_DIR)
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=store))
    try:
        manifest = unpack(archive, staging, limit=limit)
        check_loads(manifest, staging / ARTIFACT)
        return _register(manifest, staging / ARTIFACT, store, name=name, user=acting_user)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def display_name(filename: str) -> str:
    """The upload's base name, printable, as the audit log shows it (a browser sends any)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    printable = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    return printable[:200] or "an unnamed archive"


def unpack(archive: IO[bytes], into: Path, *, limit: int) -> Manifest:
    """Read the archive as a stream into `into` (version.json first); the validated manifest.

    Nothing is written outside `into`: names are checked before any byte is, links and
    devices are refused, and every file is hashed as it is written.
    """
    try:
        with tarfile.open(fileobj=archive, mode="r|gz") as tar:
            return _unpack_members(tar, into, limit)
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"not a readable .tar.gz archive ({exc})") from None


def _unpack_members(tar: tarfile.TarFile, into: Path, limit: int) -> Manifest:
    manifest: Manifest | None = None
    seen: set[str] = set()
    unpacked = 0
    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise ArchiveError(f"more than {MAX_MEMBERS} members")
        name = _checked_name(member.name)
        if name in seen:
            raise ArchiveError(f"{name} appears twice")
        seen.add(name)
        if member.isdir():
            continue
        if not member.isreg() or member.issparse():
            raise ArchiveError(f"{name} is not a plain file (links and devices are refused)")
        unpacked += member.size
        if unpacked > limit:
            raise ArchiveError(f"it unpacks to more than the limit of {limit:,} bytes")
        if manifest is None:
            if name != MANIFEST:
                raise ArchiveError(f"{MANIFEST} must come first; found {name}")
            manifest = parse_manifest(_read_manifest(tar, member))
            continue
        expected = manifest.files.get(name)
        if expected is None:
            raise ArchiveError(f"{name} is not listed in {MANIFEST}")
        _extract(tar, member, into / name, *expected)
    if manifest is None:
        raise ArchiveError(f"the archive is empty: no {MANIFEST}")
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise ArchiveError(f"{missing[0]} is listed in {MANIFEST} but not in the archive")
    return manifest


def _checked_name(name: str) -> str:
    """A member name that stays inside the archive's folder, or ArchiveError."""
    if not name or "\0" in name or "\\" in name:
        raise ArchiveError(f"{name!r} is not a valid member name")
    if name.startswith("/"):
        raise ArchiveError(f"{name} is an absolute path")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise ArchiveError(f"{name} climbs out of the archive's folder")
    if any(part in ("", ".") for part in name.rstrip("/").split("/")):
        raise ArchiveError(f"{name!r} is not a plain relative path")
    if name != MANIFEST and parts[0] != ARTIFACT:
        raise ArchiveError(f"{name} is neither {MANIFEST} nor under {ARTIFACT}/")
    return "/".join(parts)


def _read_manifest(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES:,} bytes")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"{MANIFEST} cannot be read")
    return handle.read()


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, size: int, sha256: str
) -> None:
    if member.size != size:
        raise ArchiveError(f"{member.name} is {member.size} bytes; {MANIFEST} says {size}")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"{member.name} cannot be read")
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = target.open("xb")
    except OSError as exc:
        raise _unwritable(member.name, exc) from None
    with out:
        while chunk := handle.read(CHUNK):  # a read error is the archive's: unpack() says so
            digest.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise _unwritable(member.name, exc) from None
    if digest.hexdigest() != sha256:
        raise ArchiveError(f"{member.name} does not match its sha256 in {MANIFEST}: altered")


def _unwritable(name: str, exc: OSError) -> ArchiveError:
    """The store, not the archive, is at fault (a full disk): say so rather than blame it."""
    return ArchiveError(f"{name} cannot be written to the model store ({exc.strerror or exc})")


def parse_manifest(raw: bytes) -> Manifest:
    """version.json against the schema this code writes; ArchiveError names the first fault."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArchiveError(f"{MANIFEST} is not valid JSON ({exc})") from None
    _storable(data)
    root = _object(data, MANIFEST)
    if root.get("format") != FORMAT:
        raise ArchiveError(f"{MANIFEST} is not a {FORMAT} manifest")
    found = root.get("format_version")
    if type(found) is not int or found != FORMAT_VERSION:
        raise ArchiveError(
            f"the archive is format version {found!r}; this installation reads {FORMAT_VERSION}"
        )
    version = _object(root.get("version"), "version")
    direction = _choice(version, "direction", Direction.values)
    kind = _choice(version, "kind", ModelKind.values)
    backend = _choice(version, "backend", ModelBackend.values)
    if (kind, backend) not in SERVED_FOLDERS:
        raise ArchiveError(f"no runtime serves a {kind} model on the {backend!r} backend")
    if kind == ModelKind.ENCODER and direction != Direction.DECOMPOSITION:
        raise ArchiveError("an encoder only decomposes")
    folder = SERVED_FOLDERS[(kind, backend)]
    training = root.get("training")
    if training is not None:
        training = _object(training, "training")
    return Manifest(
        source_version=_optional_int(version, "id"),
        direction=direction,
        kind=kind,
        backend=backend,
        base_model=_text(version, "base_model", 300),
        metrics=_object(version.get("metrics"), "version.metrics"),
        threshold=_probability(version, "threshold"),
        expected_fallback_rate=_probability(version, "expected_fallback_rate"),
        train_count=_optional_int(version, "train_count") or 0,
        created_at=_optional_text(version, "created_at"),
        exported_at=_text(root, "exported_at", 64),
        training=training,
        files=_files(root.get("files"), f"{ARTIFACT}/{folder}/"),
    )


def _files(value: Any, prefix: str) -> dict[str, tuple[int, str]]:
    files: dict[str, tuple[int, str]] = {}
    for name, entry in _object(value, "files").items():
        if _checked_name(name) != name or not name.startswith(prefix):
            raise ArchiveError(f"files: {name} is not a file under {prefix}")
        item = _object(entry, f"files[{name}]")
        size, sha256 = item.get("size"), item.get("sha256")
        if type(size) is not int or size < 0:
            raise ArchiveError(f"files[{name}].size must be a whole number of bytes")
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise ArchiveError(f"files[{name}].sha256 must be 64 lowercase hex digits")
        files[name] = (size, sha256)
    if not files:
        raise ArchiveError("files: the manifest lists no artefact files")
    return files


def _storable(value: Any, depth: int = 0) -> None:
    """What PostgreSQL's jsonb would refuse (a NUL, a lone surrogate, deep nesting) is refused
    here, with its reason, rather than failing the insert."""
    if depth > 32:
        raise ArchiveError(f"{MANIFEST} is nested more than 32 levels deep")
    if isinstance(value, str):
        if "\0" in value:
            raise ArchiveError(f"{MANIFEST} holds a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ArchiveError(f"{MANIFEST} holds a lone surrogate (not valid Unicode)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, depth + 1)
            _storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, depth + 1)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArchiveError(f"{where} must be a JSON object")
    return value


def _choice(data: dict[str, Any], key: str, allowed: list[str]) -> str:
    value = data.get(key)
    if value not in allowed:
        raise ArchiveError(f"version.{key} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _text(data: dict[str, Any], key: str, longest: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > longest or "\0" in value:
        raise ArchiveError(f"{key} must be a non-empty text of at most {longest} characters")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key, 64)


def _optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (type(value) is not int or value < 0):
        raise ArchiveError(f"version.{key} must be a whole number")
    return value


def _probability(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) not in (int, float) or not 0 <= value <= 1:
        raise ArchiveError(f"version.{key} must be a number between 0 and 1, or null")
    return float(value)


def check_loads(manifest: Manifest, artifact: Path) -> None:
    """Build the runtime from the unpacked files, as serving would, and let it go again."""
    try:
        load_runtime(manifest.spec(artifact))
    except Exception as exc:  # any loader failure: the archive's content is what is wrong
        raise ArchiveError(
            f"the {manifest.kind} artefact does not load on the {manifest.backend} backend: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _register(
    manifest: Manifest, unpacked: Path, store: Path, *, name: str, user: Any
) -> ModelVersion:
    user = user if getattr(user, "pk", None) else None
    source = f"v{manifest.source_version}" if manifest.source_version else "a version"
    moved: Path | None = None
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                direction=manifest.direction,
                kind=manifest.kind,
                backend=manifest.backend,
                base_model=manifest.base_model,
                status=VersionStatus.READY,
                # No headline and no threshold until it is evaluated here: the gate refuses it.
                metrics={"imported": imported_record(manifest, name)},
                train_count=manifest.train_count,
                created_by=user,
            )
            moved = store / f"v{version.pk}"
            if moved.exists():  # left by a version row that no longer exists
                shutil.rmtree(moved)
            os.replace(unpacked, moved)
            version.artifact_path = str(moved)
            version.save(update_fields=["artifact_path", "updated_at"])
            # Before the row commits: every host (the worker that evaluates it, too) must find
            # it in the artefact store once it exists.
            _publish(version.pk, moved)
            VersionEvent.objects.create(
                action=VersionEvent.Action.IMPORT,
                version=version,
                actor=user,
                reason=f"from {name} ({source} where it was exported, {manifest.exported_at})",
            )
            transaction.on_commit(lambda: queue_evaluation(version.pk))
    except BaseException:
        if moved is not None:
            shutil.rmtree(moved, ignore_errors=True)
        raise
    return version


def _publish(version_id: int, folder: Path) -> None:
    try:
        publish_configured(version_id, folder)
    except PublishFailed as exc:
        raise ArchiveError(str(exc)) from None


def imported_record(manifest: Manifest, name: str) -> dict[str, Any]:
    """Where an imported version came from and what it scored there (shown, never gated on)."""
    return {
        "file": name,
        "source_version": manifest.source_version,
        "exported_at": manifest.exported_at,
        "created_at": manifest.created_at,
        "metrics": manifest.metrics,
        "threshold": manifest.threshold,
        "expected_fallback_rate": manifest.expected_fallback_rate,
        "training": manifest.training,
    }


# The evaluation a training runs before the gate is a management command of the training half
# (training/management/commands/evaluate_version.py): boundary/ never imports training/, so the
# worker is handed the command by name.
EVALUATE_COMMAND = "evaluate_version"


def queue_evaluation(version_id: int) -> None:
    """Hand the version to the worker to score on this install's eval split."""
    from django_q.tasks import async_task

    async_task(
        "django.core.management.call_command",
        EVALUATE_COMMAND,
        version_id,
        task_name=f"evaluate imported v{version_id}",
        **model_job_options(),
    )
