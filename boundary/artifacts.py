"""The artefact store: how a version trained on one host reaches every other host.

Without a store (VALENCE_ARTIFACT_STORE empty, the default) a version is read where it was
written, its `artifact_path`; a shared volume mounted at the same path on every host covers
several hosts that way. With one (`file:///path` or `s3://bucket/prefix`), the host that makes a
version's artefact final (a training, an archive import) publishes its folder as `v<N>/` with a
`manifest.json` of each file's size and sha256, written last, so a manifest means a complete
upload. Every host loads a version from its own `VALENCE_MODEL_DIR/v<N>/`, fetched on first
need: downloaded into a private sibling folder, every file checked against the manifest, then
renamed into place. A copy that does not match is refused (ArtifactUnavailable, which serving
treats as a missing model: the LLM answers), so a host never serves half a download or bytes
that changed in the store.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlparse

from django.conf import settings

from boundary.students import BackendUnavailable

MANIFEST = "manifest.json"
FORMAT = "valence-artifact"
CHUNK = 1024 * 1024


class ArtifactUnavailable(BackendUnavailable):
    """A version's artefact cannot be fetched: not in the store, unreadable, or not what its
    manifest says. A BackendUnavailable, so the cascade falls back to the LLM."""


class NotInStore(ArtifactUnavailable):
    """The store has no manifest for the version."""


class PublishFailed(RuntimeError):
    """A version's artefact could not be written to the store."""


class Store(Protocol):
    @property
    def url(self) -> str: ...

    def put_file(self, key: str, source: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        ...

    def get_file(self, key: str, target: Path) -> None: ...


@dataclass(frozen=True)
class FileStore:
    """A folder, typically on a volume every host mounts (NFS, EFS, a PVC)."""

    root: Path
    url: str

    def put_file(self, key: str, source: Path) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # a reader never sees half a file under its name

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, target: Path) -> None:
        shutil.copyfile(self.root / key, target)


class S3Store:
    """An S3-compatible bucket through boto3 (credentials: the standard AWS_* variables)."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str = "", url: str) -> None:
        import boto3  # only hosts configured for S3 pay for the import

        self.bucket, self.prefix, self.url = bucket, prefix, url
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self._key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        data: bytes = response["Body"].read()
        return data

    def get_file(self, key: str, target: Path) -> None:
        self.client.download_file(self.bucket, self._key(key), str(target))


def open_store(url: str, *, endpoint_url: str = "") -> Store:
    """The store a VALENCE_ARTIFACT_STORE value names."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.path.startswith("/") and not parsed.netloc:
        return FileStore(Path(parsed.path), url)
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Store(parsed.netloc, parsed.path.strip("/"), endpoint_url=endpoint_url, url=url)
    raise ValueError(f"a store is file:///absolute/path or s3://bucket/prefix, not {url!r}")


@functools.cache
def _cached_store(url: str, endpoint_url: str) -> Store:
    return open_store(url, endpoint_url=endpoint_url)  # a boto3 client is built once per process


def configured_store() -> Store | None:
    """This process's store (VALENCE_ARTIFACT_STORE), or None: artefacts stay where written."""
    url = settings.VALENCE_ARTIFACT_STORE
    return _cached_store(url, settings.VALENCE_S3_ENDPOINT_URL) if url else None


# --- Publish ---


def publish(store: Store, version_id: int, folder: Path) -> dict[str, Any]:
    """Upload every file under `folder` as `v<N>/...`, then its manifest; returns the manifest."""
    files = {
        path.relative_to(folder).as_posix(): _describe(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    if not files:
        raise PublishFailed(f"v{version_id} has no files at {folder} to publish")
    if MANIFEST in files:
        raise PublishFailed(f"v{version_id} has its own {MANIFEST}, which the store's would hide")
    manifest = {"format": FORMAT, "version": version_id, "files": files}
    try:
        for name in files:
            store.put_file(f"v{version_id}/{name}", folder / name)
        store.put_bytes(f"v{version_id}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
    except Exception as exc:  # boto3's and the filesystem's errors alike: say where it failed
        raise PublishFailed(
            f"could not publish v{version_id} to {store.url}: {type(exc).__name__}: {exc}"
        ) from exc
    return manifest


def publish_configured(version_id: int, folder: Path) -> dict[str, Any] | None:
    """Publish to this process's store, if it has one."""
    store = configured_store()
    return None if store is None else publish(store, version_id, folder)


def _describe(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def file_sha256(path: Path) -> str:
    """A file's sha256, read in chunks (artefacts and archives can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- Fetch ---


def local_artifact(version_id: int, artifact_path: str) -> Path:
    """The folder this host loads a version from; fetched from the store on first need.

    Without a store: `artifact_path`, as recorded. With one: `VALENCE_MODEL_DIR/v<N>`, by id,
    never the writer's absolute path (another host's disk). A version the store does not hold
    (trained before the store was configured) is read from `artifact_path` if this host has it.
    Version 0 is a scratch model outside the registry (the study): always `artifact_path`.
    """
    store = configured_store()
    if store is None or version_id < 1:
        return Path(artifact_path)
    folder = Path(settings.VALENCE_MODEL_DIR) / f"v{version_id}"
    if folder.is_dir():
        return folder
    try:
        return _fetch_unless_refused(store, version_id, folder)
    except NotInStore:
        if artifact_path and Path(artifact_path).is_dir():
            return Path(artifact_path)
        raise


# A refusal is remembered for a while: the cascade asks for an unloadable version on every
# request, and downloading a broken artefact again each time would cost every request a fetch.
REFUSAL_TTL_S = 30.0
_refused: dict[tuple[str, Path], tuple[float, ArtifactUnavailable]] = {}


def _fetch_unless_refused(store: Store, version_id: int, folder: Path) -> Path:
    key = (store.url, folder)
    refused = _refused.get(key)
    if refused is not None and time.monotonic() - refused[0] < REFUSAL_TTL_S:
        raise type(refused[1])(str(refused[1]))
    try:
        return fetch(store, version_id, folder)
    except ArtifactUnavailable as exc:
        _refused[key] = (time.monotonic(), exc)
        raise


def fetch(store: Store, version_id: int, folder: Path) -> Path:
    """Download `v<N>/` into `folder`, every file verified, or raise ArtifactUnavailable."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _fetch_lock(folder):
        if folder.is_dir():  # another process of this host fetched it while this one waited
            return folder
        files = _read_manifest(store, version_id)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-fetch-", dir=folder.parent))
        try:
            for name, expected in files.items():
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    store.get_file(f"v{version_id}/{name}", target)
                except Exception as exc:
                    raise ArtifactUnavailable(
                        f"v{version_id}: cannot download {name} from {store.url}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                got = _describe(target)
                if got != expected:
                    raise ArtifactUnavailable(
                        f"v{version_id}: {name} from {store.url} does not match its manifest "
                        f"(size {got['size']}, sha256 {got['sha256']}; expected size "
                        f"{expected['size']}, sha256 {expected['sha256']}); refusing to load it"
                    )
            try:
                os.rename(staging, folder)
            except OSError:
                if not folder.is_dir():  # not a host sharing this folder having won the race
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _read_manifest(store: Store, version_id: int) -> dict[str, dict[str, Any]]:
    """The manifest's files, each name checked to stay inside the version's folder."""
    try:
        raw = store.get_bytes(f"v{version_id}/{MANIFEST}")
    except Exception as exc:
        raise ArtifactUnavailable(
            f"v{version_id}: cannot read its manifest from {store.url}: {type(exc).__name__}: {exc}"
        ) from exc
    if raw is None:
        raise NotInStore(f"v{version_id} is not in the artefact store {store.url}")
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(files, dict) or not files:
            raise ValueError("not a valence-artifact manifest with files")
        for name, entry in files.items():
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise ValueError(f"unsafe file name {name!r}")
            if set(entry) != {"size", "sha256"}:
                raise ValueError(f"{name}: expected size and sha256")
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactUnavailable(
            f"v{version_id}: the manifest in {store.url} is unusable: {exc}"
        ) from exc
    return files


@contextmanager
def _fetch_lock(folder: Path) -> Iterator[None]:
    """One download per host at a time for a version: its web processes and threads wait."""
    with (folder.parent / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
