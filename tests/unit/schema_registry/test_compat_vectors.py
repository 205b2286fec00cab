"""The registry agrees with every vector of ``testdata/avro_compat_cases.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from featurestore.config import load_settings
from featurestore.ingest.paths import shared_dir
from featurestore.schema_registry import CompatibilityLevel
from featurestore.schema_registry import MemoryRecordLog
from featurestore.schema_registry import check_compatibility
from featurestore.schema_registry import create_app
from featurestore.schema_registry import parse_schema

EXPECTED_CASES = 138


def _cases_file() -> Path:
    return shared_dir() / "testdata" / "avro_compat_cases.json"


def _load() -> list[dict[str, Any]]:
    path = _cases_file()
    return json.loads(path.read_text()) if path.is_file() else []


CASES = _load()


def test_vectors_are_present() -> None:
    assert _cases_file().is_file(), f"missing {_cases_file()}; set FEATURESTORE_SHARED_DIR"
    assert len(CASES) == EXPECTED_CASES


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    reader = parse_schema(json.dumps(case["reader"]))
    writer = parse_schema(json.dumps(case["writer"]))
    # BACKWARD: the new schema (reader) reads what the old one (writer) wrote.
    backward = check_compatibility(reader, [writer], CompatibilityLevel.BACKWARD)
    # FORWARD: the old schema (reader) reads what the new one (writer) writes.
    forward = check_compatibility(writer, [reader], CompatibilityLevel.FORWARD)
    assert (not backward) is case["compatible"], backward
    assert (not forward) is case["compatible"], forward


def test_vectors_over_http() -> None:
    """Every vector through the REST compatibility endpoint, as a client would ask."""
    assert CASES, "no vectors loaded"
    app = create_app(load_settings({}), log=MemoryRecordLog())
    with TestClient(app) as client:
        for i, case in enumerate(CASES):
            subject = f"vector-{i}"
            put = client.put(f"/config/{subject}", json={"compatibility": "BACKWARD"})
            assert put.status_code == 200
            registered = client.post(
                f"/subjects/{subject}/versions", json={"schema": json.dumps(case["writer"])}
            )
            assert registered.status_code == 200, registered.json()
            answer = client.post(
                f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
                json={"schema": json.dumps(case["reader"])},
            ).json()
            assert answer["is_compatible"] is case["compatible"], (case["name"], answer)
