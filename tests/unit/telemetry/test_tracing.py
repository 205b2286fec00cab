from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurestore.config import TracingSettings
from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.errors import ConfigurationError
from featurestore.online.pipelined import command_name
from featurestore.online.pipelined import encode_command
from featurestore.telemetry import Telemetry
from featurestore.telemetry import kafka_headers
from featurestore.telemetry import remote_context


def test_tracing_settings_from_env_round_trip() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_TRACING__EXPORTER": "otlp",
            "FEATURESTORE_TRACING__ENDPOINT": "http://collector:4317",
            "FEATURESTORE_TRACING__HEADERS": "Authorization=Bearer x, tenant=a=b",
        }
    )
    assert settings.tracing.exporter == "otlp"
    assert settings.tracing.header_pairs == {"authorization": "Bearer x", "tenant": "a=b"}
    assert "Bearer" not in repr(settings.tracing)
    assert load_settings(settings_env(settings)).tracing == settings.tracing
    assert load_settings({}).tracing.exporter == "none"


@pytest.mark.parametrize("headers", ["novalue", "=x", "a=1,,=2"])
def test_malformed_headers_are_refused_naming_the_variable(headers: str) -> None:
    with pytest.raises(ConfigurationError, match="FEATURESTORE_TRACING__HEADERS"):
        load_settings({"FEATURESTORE_TRACING__HEADERS": headers})
    with pytest.raises(ConfigurationError, match="FEATURESTORE_TRACING__EXPORTER"):
        load_settings({"FEATURESTORE_TRACING__EXPORTER": "jaeger"})


@pytest.mark.parametrize(
    ("exporter", "traces"), [("none", False), ("console", True), ("otlp", True)]
)
def test_the_exporter_is_chosen_by_configuration(exporter: str, traces: bool) -> None:
    telemetry = Telemetry.build(TracingSettings(exporter=exporter), prometheus=False)
    try:
        assert telemetry.traces is traces
    finally:
        telemetry.close()


def test_context_goes_into_kafka_headers_and_comes_back_from_metadata() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert kafka_headers() == []  # no span: nothing to carry
    with provider.get_tracer("t").start_as_current_span("produce") as span:
        headers = kafka_headers()
    carried = [(k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in headers]
    remote = trace.get_current_span(remote_context(carried)).get_span_context()
    assert remote.trace_id == span.get_span_context().trace_id
    assert remote.span_id == span.get_span_context().span_id
    assert not trace.get_current_span(remote_context(None)).get_span_context().is_valid


def test_command_name_of_a_batch_is_its_first_command() -> None:
    assert command_name(encode_command("HMGET", "k", "f") + encode_command("GET", "x")) == "HMGET"
    assert command_name(encode_command("get", "x")) == "GET"
    assert command_name(b"") == "UNKNOWN"
