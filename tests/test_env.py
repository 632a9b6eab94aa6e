from __future__ import annotations

import pytest

from valence_site.env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_float,
    env_int,
    env_json,
    env_list,
    env_secret,
)


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False)])
def test_env_bool_reads_common_spellings(raw, expected):
    assert env_bool("X", environ={"X": raw}) is expected


def test_env_bool_refuses_nonsense():
    with pytest.raises(ImproperlyConfiguredEnv, match="X must be a boolean"):
        env_bool("X", environ={"X": "maybe"})


def test_env_int_uses_the_default_when_unset():
    assert env_int("X", 7, environ={}) == 7


def test_env_int_enforces_its_minimum():
    with pytest.raises(ImproperlyConfiguredEnv, match=">= 1"):
        env_int("X", 7, minimum=1, environ={"X": "0"})


def test_env_int_refuses_a_word():
    with pytest.raises(ImproperlyConfiguredEnv, match="integer"):
        env_int("X", 7, environ={"X": "seven"})


def test_env_float_enforces_its_range():
    with pytest.raises(ImproperlyConfiguredEnv):
        env_float("X", 0.1, minimum=0, maximum=0.5, environ={"X": "0.9"})


def test_env_list_splits_on_commas():
    assert env_list("X", [], environ={"X": "a.example, b.example,,"}) == ["a.example", "b.example"]


def test_env_json_names_the_variable_on_a_syntax_error():
    with pytest.raises(ImproperlyConfiguredEnv, match="X must be valid JSON"):
        env_json("X", {}, environ={"X": "{nope"})


def test_env_secret_prefers_the_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    environ = {"K": "from-env", "K_FILE": str(secret)}
    assert env_secret("K", environ=environ) == "from-file"


def test_env_secret_reports_an_unreadable_file(tmp_path):
    with pytest.raises(ImproperlyConfiguredEnv, match="K_FILE"):
        env_secret("K", environ={"K_FILE": str(tmp_path / "missing")})
