"""Where a sure local decomposition spends its time outside the model, in process.

    VALENCE_DATA_DIR=<a scratch data dir with an active encoder> \
        .venv/bin/python tools/profile_hot_route.py [--requests 400] [--profile]

Calls the WSGI application (`valence_site.wsgi.application`, hot routes and all) the way
gunicorn does, with no HTTP, for `--requests` sentences of WebNLG dev, and prints the median
of each part of the request: the model (the cascade's own stage timing), the stored call's
insert and commit, and everything else. Every answer takes the sure local path: the active
encoder's threshold is set to 0 *in this process only*. It writes calls into the data dir's
database, so point it at a scratch one. `--profile` adds cProfile's 30 costliest functions
(cumulative), the model's own frames included.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--data", default=str(HERE.parent / "shared/data/webnlg/dev.jsonl"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="cProfile order (e.g. tottime)")
    arguments = parser.parse_args()
    os.environ.setdefault("VALENCE_API_RATE", "1000000/second")
    os.environ.setdefault("VALENCE_LOG_LEVEL", "WARNING")

    from valence_site.wsgi import application  # noqa: PLC0415  (settings and apps first)

    application = application  # the import above must stay first: it sets Django up
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from rest_framework.authtoken.models import Token  # noqa: PLC0415

    from boundary import cascade, models  # noqa: PLC0415
    from boundary.warming import ready_student  # noqa: PLC0415

    cascade._threshold = lambda version: 0.0  # every answer is sure: the path being measured
    user, _ = get_user_model().objects.get_or_create(username="profile-hot-route")
    token, _ = Token.objects.get_or_create(user=user)
    for version in cascade.serving_versions(models.Direction.DECOMPOSITION):
        ready_student(version.student_spec(), wait=True)

    with open(arguments.data, encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line in lines]
    texts = texts[: arguments.requests]
    parts: dict[str, list[float]] = defaultdict(list)
    insert = _timed(cascade, "insert_call", parts, "insert and commit")

    def one(text: str) -> dict:
        body = json.dumps({"text": text}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/decompose",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Token {token.key}",
            "HTTP_HOST": "127.0.0.1",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        started = time.perf_counter()
        chunks = application(environ, lambda s, h, *a: status.append(s))
        answer = b"".join(chunks)
        parts["request"].append((time.perf_counter() - started) * 1000)
        assert status[0].startswith("200"), (status, answer[:300])
        return json.loads(answer)

    for text in texts[:20]:  # warm: the token is remembered, caches filled
        one(text)
    for values in parts.values():
        values.clear()
    profiler = cProfile.Profile() if arguments.profile else None
    call_ids = []
    if profiler:
        profiler.enable()
    for text in texts:
        call_ids.append(one(text)["call_id"])
    if profiler:
        profiler.disable()
    insert.restore()
    model = _model_ms(call_ids)
    outside = [r - m for r, m in zip(parts["request"], model, strict=True)]
    print(f"{len(texts)} sure decompositions through the WSGI callable (no HTTP), medians:")
    print(f"  request {statistics.median(parts['request']):.3f} ms")
    print(f"  model (the cascade's stage timing) {statistics.median(model):.3f} ms")
    print(f"  outside the model {statistics.median(outside):.3f} ms")
    print(f"    of which insert and commit {statistics.median(parts['insert and commit']):.3f} ms")
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats(arguments.sort).print_stats(45)
        print(stream.getvalue())


def _model_ms(call_ids: list[int]) -> list[float]:
    from boundary.models import BoundaryCall  # noqa: PLC0415

    timings = {
        call.pk: sum(t["ms"] for t in (call.diagnostics or {}).get("timings", []))
        for call in BoundaryCall.objects.filter(pk__in=call_ids)
    }
    return [timings[pk] for pk in call_ids]


class _timed:
    """Wraps module.name to time it into parts[label]; restore() puts it back."""

    def __init__(self, module, name: str, parts: dict[str, list[float]], label: str) -> None:
        self.module, self.name, self.original = module, name, getattr(module, name)

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                parts[label].append((time.perf_counter() - started) * 1000)

        setattr(module, name, wrapper)

    def restore(self) -> None:
        setattr(self.module, self.name, self.original)


if __name__ == "__main__":
    main()
