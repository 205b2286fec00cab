"""Random requests to every REST route of a real registry process: never a 5xx, and every error
a Confluent body (``{"error_code": int, "message": str}``) that gives away no code."""

from __future__ import annotations

import json
import re
from typing import Any
from typing import cast
from urllib.parse import quote

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Route

from featurestore.schema_registry.app import build_app
from featurestore.schema_registry.registry import SchemaRegistry
from tests.bad_input import FUZZ
from tests.bad_input import leaks
from tests.integration.schema_registry.conftest import RegistryProcess

pytestmark = pytest.mark.integration

# The routes' handlers only close over the registry: the table can be read without one.
ROUTES = tuple(
    (method, route.path)
    for route in build_app(cast(SchemaRegistry, None)).routes
    if isinstance(route, Route)
    for method in sorted(route.methods or ()) if method != "HEAD"
)  # fmt: skip
AVRO = json.dumps({"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}]})
NAMES = ("fuzz-value", "fuzz-key", ":.:", "..", "%", "a b", "", "_schemas", "default")
VERSIONS = ("latest", "1", "2", "-1", "0", "99999999999999999999", "1.5", "x")
QUERY_KEYS = (
    "deleted", "deleted_only", "permanent", "normalize", "verbose", "offset", "limit",
    "subjectPrefix", "subject", "defaultToGlobal", "fetchMaxId", "latestOnly", "format",
)  # fmt: skip
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
schemas = st.one_of(
    st.just(AVRO),
    st.sampled_from(['"string"', '"long"', "[]", "{}", '{"type": "record"}', "not json"]),
    json_values.map(json.dumps),
    st.text(max_size=30),
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"schema": schemas},
        optional={
            "schemaType": st.sampled_from(["AVRO", "JSON", "PROTOBUF", "avro", "", "X"]),
            "references": json_values,
            "metadata": json_values,
            "ruleSet": json_values,
            "version": st.integers() | st.text(max_size=5),
            "id": st.integers(),
        },
    ).map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "compatibility": st.sampled_from(["BACKWARD", "FULL_TRANSITIVE", "NONE", "x", ""])
            | json_values,
            "mode": st.sampled_from(["READWRITE", "READONLY", "IMPORT", "x"]) | json_values,
            "normalize": json_values,
        },
    ).map(lambda d: json.dumps(d).encode()),
)


@st.composite
def requests_to_routes(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, query, body) of a random request to one of the routes."""
    method, template = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "schema_id":
            return str(draw(st.integers(0, 10) | st.integers(0, 10**30)))
        pool = VERSIONS if name == "version" else NAMES
        return quote(draw(st.sampled_from(pool) | st.text(min_size=1, max_size=12)), safe="")

    path = _PARAM.sub(value, template)
    flags = st.sampled_from(["true", "True", "false", "-1", "0", "5", "x", ""])
    query = draw(
        st.dictionaries(st.sampled_from(QUERY_KEYS), flags | st.text(max_size=8), max_size=3)
    )
    return method, path, query, draw(bodies)


@FUZZ
@given(request=requests_to_routes())
def test_fuzz_every_route_answers_without_a_server_error(
    registry: RegistryProcess, request: tuple[str, str, dict[str, str], bytes | None]
) -> None:
    method, path, query, body = request
    reply = requests.request(
        method,
        registry.url + path,
        params=query,
        data=body,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=10,
    )
    assert reply.status_code < 500, (method, path, query, body, reply.status_code, reply.text)
    if reply.status_code >= 400:
        error: Any = reply.json()
        assert isinstance(error, dict), reply.text
        assert isinstance(error.get("error_code"), int), reply.text
        assert isinstance(error.get("message"), str), reply.text
        assert not leaks(error["message"]), reply.text


def test_the_route_table_is_read() -> None:
    assert ("POST", "/subjects/{subject}/versions") in ROUTES
    assert len(ROUTES) >= 25
