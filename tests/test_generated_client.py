"""A client generated from the schema by a maintained generator works against the service.

openapi-python-client (dev dependency) generates a typed Python client from `/api/schema/`, as
an app team would; the test imports it and calls decompose, recompose and the stored call over
HTTP against a live server. The LLM is faked at the HTTP layer (the generated client uses httpx,
the Anthropic SDK httpx2, so only the teacher is faked).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from tests.anthropic_mock import text_message, tool_message
from tests.factories import TokenFactory

pytestmark = pytest.mark.django_db(transaction=True)

TRIPLE = {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}


@pytest.fixture(scope="module")
def client_package(tmp_path_factory) -> str:
    """Generate the client once, from the schema the service serves."""
    folder = tmp_path_factory.mktemp("generated")
    schema = folder / "schema.yaml"
    call_command("spectacular", "--file", str(schema))
    generator = Path(sys.executable).with_name("openapi-python-client")
    bin_dir = str(Path(sys.executable).parent)  # the generator formats with ruff from PATH
    subprocess.run(
        [str(generator), "generate", "--path", str(schema), "--meta", "none"],
        cwd=folder,
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=300,
    )
    [package] = [p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    sys.path.insert(0, str(folder))
    yield package.name
    sys.path.remove(str(folder))
    shutil.rmtree(folder, ignore_errors=True)


def _teacher(request: httpx.Request) -> httpx.Response:
    if b'"tools"' in request.content:  # decomposition calls the triples tool
        return httpx.Response(200, json=tool_message({"triples": [TRIPLE]}))
    return httpx.Response(200, json=text_message("Chris prefers composable architectures."))


@pytest.fixture
def generated(client_package, live_server, user, teacher_api):
    teacher_api.side_effect = _teacher
    package = importlib.import_module(client_package)
    client = package.AuthenticatedClient(
        base_url=live_server.url, token=TokenFactory(user=user).key, prefix="Token"
    )
    return client_package, client


def _module(package: str, name: str):
    return importlib.import_module(f"{package}.{name}")


def test_the_generated_client_decomposes(generated):
    package, client = generated
    decompose = _module(package, "api.v1.v1_decompose_create")
    request = _module(package, "models").DecomposeRequestRequest(
        text="Chris prefers composable architectures."
    )
    response = decompose.sync_detailed(client=client, body=request)
    assert response.status_code == 200
    answer = response.parsed
    assert [(t.subject, t.predicate, t.object_) for t in answer.triples] == [
        ("Chris", "prefers", "composable architectures")
    ]


def test_the_generated_client_recomposes_and_reads_the_stored_call(generated):
    package, client = generated
    models = _module(package, "models")
    triple = models.TripleRequest(
        subject="Chris", predicate="prefers", object_="composable architectures"
    )
    response = _module(package, "api.v1.v1_recompose_create").sync_detailed(
        client=client, body=models.RecomposeRequestRequest(triples=[triple])
    )
    assert response.status_code == 200
    call_id = response.parsed.call_id
    stored = _module(package, "api.v1.v1_calls_retrieve").sync(client=client, id=call_id)
    assert stored.id == call_id
    assert stored.output == "Chris prefers composable architectures."
