"""Several hosts for real: two web servers (gunicorn), each with its own data and model folders
as separate machines would have, share one PostgreSQL database, one Redis and an S3 artefact
store (moto's S3-compatible server on loopback). One worker, beside server A, trains a version;
it is promoted through A; server B, which never saw A's disk, fetches it from the store, checks
it and serves it once its registry cache (VALENCE_REGISTRY_CACHE_SECONDS) has expired.

Skipped only when PostgreSQL or Redis cannot be reached on this machine (CI runs both)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from typing import Any

import boto3
import pytest

from tests.scratch_pairs import STORE_PAIRS
from tests.tiny_models import build_tiny_causal_lm
from training.api_bench import ScratchServer
from valence_site.scratch_db import scratch_database

POSTGRES = os.environ.get("DATABASE_URL", "")
if not POSTGRES.startswith(("postgres://", "postgresql://")):
    POSTGRES = "postgres://postgres@127.0.0.1:5432/valence"
REDIS = "redis://127.0.0.1:6379/13"  # a database of its own, emptied before and after
TTL = 2.0

SETUP = (
    STORE_PAIRS
    + """
from training.trigger import queue_training
# Enough steps for the tiny model to write parseable triples for these texts.
train = {"max_steps": 80, "epochs": 10000, "batch_size": 2, "learning_rate": 1e-2}
print(queue_training("decomposition", trigger="manual", config={"train": train}).pk)
"""
)

STATE = """
import json
from boundary.models import ModelVersion
v = ModelVersion.objects.select_related("training_run").get(pk=%d)
print(json.dumps({"status": v.status, "run": v.training_run.status, "path": v.artifact_path,
                  "error": v.training_run.error[-2000:], "log": v.training_run.log[-2000:]}))
"""


def unreachable() -> str:
    """Why the services this test needs cannot be used here, or "" when they can."""
    import dj_database_url
    import psycopg
    import redis

    database = dj_database_url.parse(POSTGRES)
    try:
        psycopg.connect(
            dbname="postgres",
            user=database.get("USER") or "postgres",
            host=database.get("HOST") or "127.0.0.1",
            port=database.get("PORT") or 5432,
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL at {database.get('HOST')}:{database.get('PORT')}: {exc}"
    try:
        redis.Redis.from_url(REDIS, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"no Redis at {REDIS}: {exc}"
    return ""


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_training(server: ScratchServer, version: int) -> dict[str, Any]:
    """Polled through the server's API (cheap), then the run's details from its shell."""
    deadline = time.monotonic() + 240  # a safety net against a hang, not a speed bound
    while time.monotonic() < deadline:
        status, body = server.request("GET", "/api/v1/models")
        rows = body["results"] if isinstance(body, dict) else body
        if status == 200 and any(
            row["id"] == version and row["status"] not in ("queued", "training", "evaluating")
            for row in rows
        ):
            return json.loads(last_line(server.manage("shell", "--command", STATE % version)))
        time.sleep(0.5)
    log = (server.folder / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"v{version} never finished training:\n{log}")


@pytest.fixture(scope="module")
def s3_store(tmp_path_factory):
    """An S3-compatible server on loopback with an empty bucket; the variables that reach it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    bucket = f"valence-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials(credentials))
    client.create_bucket(Bucket=bucket)
    try:
        yield {
            "client": client,
            "bucket": bucket,
            "environment": {
                **credentials,
                "VALENCE_ARTIFACT_STORE": f"s3://{bucket}/models",
                "VALENCE_S3_ENDPOINT_URL": endpoint,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            },
        }
    finally:
        server.stop()


def _boto_credentials(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
        "region_name": credentials["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory, s3_store) -> dict[str, Any]:
    reason = unreachable()
    if reason:
        pytest.skip(reason)
    import redis

    broker = redis.Redis.from_url(REDIS)
    broker.flushdb()
    folder = tmp_path_factory.mktemp("hosts")
    lm = build_tiny_causal_lm(folder / "lm")
    common = {
        **s3_store["environment"],
        "REDIS_URL": REDIS,
        "VALENCE_REGISTRY_CACHE_SECONDS": str(TTL),
        "VALENCE_BASE_MODEL_DECOMPOSITION": str(lm),
        "VALENCE_GENERATIVE_BACKEND": "transformers",
        "VALENCE_Q_WORKERS": "1",
        "VALENCE_TRAIN_EVERY": "1000000",  # only the training this test queues
        "VALENCE_ENCODER_TRAIN_EVERY": "1000000",
        "OMP_NUM_THREADS": "1",  # a model this small gains nothing from threads on a busy host
    }
    started = time.monotonic()
    with scratch_database(f"hosts_{os.getpid()}", server_url=POSTGRES) as database_url:
        servers = {
            name: ScratchServer(
                workers=1,
                threads=2,
                encoder_threads=1,
                database_url=database_url,
                folder=folder / name,
                environment={**common, "VALENCE_MODEL_DIR": str(folder / name / "models")},
            )
            for name in ("a", "b")
        }
        a, b = servers["a"], servers["b"]
        try:
            a.prepare([])
            b.token = a.token  # one database: the token works on both
            version = int(last_line(a.manage("shell", "--command", SETUP)))
            a.start_worker()
            a.start()
            b.start()
            trained = wait_for_training(a, version)
            before = b.request("POST", "/api/v1/decompose", {"text": "Person 1 uses Vim."})
            # Nothing is read from the trainer's disk from here on: only the store has it.
            shutil.rmtree(trained["path"], ignore_errors=True)
            a.manage("promote_version", str(version), "--force", "--reason", "two hosts test")
            promoted_at = time.monotonic()
            time.sleep(TTL + 0.1)  # every process's cached registry read is now stale
            asked_at = time.monotonic()
            after = b.request("POST", "/api/v1/decompose", {"text": "Person 1 uses Vim."})
            answered_at = time.monotonic()
        finally:
            for server in servers.values():
                server.stop()
            broker.flushdb()
    return {
        "version": version,
        "trained": trained,
        "before": before,
        "after": after,
        "asked_after_s": asked_at - promoted_at,
        "answer_s": answered_at - asked_at,
        "total_s": answered_at - started,
        "b_models": folder / "b" / "models",
        "a_models": folder / "a" / "models",
        "store": s3_store,
    }


def test_the_worker_trains_the_version_and_publishes_it_to_the_store(two_hosts):
    trained, version = two_hosts["trained"], two_hosts["version"]
    assert (trained["run"], trained["status"]) == ("succeeded", "ready"), trained["error"]
    store = two_hosts["store"]
    manifest = store["client"].get_object(
        Bucket=store["bucket"], Key=f"models/v{version}/manifest.json"
    )
    assert "merged/config.json" in json.loads(manifest["Body"].read())["files"]


def test_before_the_promotion_the_other_server_has_no_local_model(two_hosts):
    status, body = two_hosts["before"]
    assert status == 503, body
    assert body["error"]["code"] == "teacher_unavailable"


def test_the_other_server_serves_the_promoted_version_within_the_registry_ttl(two_hosts):
    status, body = two_hosts["after"]
    assert status == 200, body
    assert (body["served_by"], body["model_version"]) in {
        ("student", two_hosts["version"]),
        ("degraded", two_hosts["version"]),
    }, body
    assert {t["source"]["stage"] for t in body["triples"]} <= {"generative"}
    assert two_hosts["asked_after_s"] <= TTL + 1.0  # asked once the TTL had passed, no later


def test_the_other_server_loaded_its_own_copy_from_the_store(two_hosts):
    """The trainer's copy was deleted before the promotion: B can only have fetched it."""
    version = two_hosts["version"]
    assert (two_hosts["b_models"] / f"v{version}" / "merged" / "config.json").is_file()
    assert not (two_hosts["a_models"] / f"v{version}").exists()
