"""The server's keepalive: how long it lets a call be silent, how long it waits for a ping's answer.

Both are settings (``FEATURESTORE_SERVICE__KEEPALIVE_S``, ``..._KEEPALIVE_TIMEOUT_S``) that reach
the server's gRPC options; tests/integration/service/test_keepalive.py shows their effect.
"""

from __future__ import annotations

import pytest
from featurestore_client._channel import KEEPALIVE_OPTIONS

from featurestore.config import ServiceSettings
from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.service.server import keepalive_options


def test_the_defaults_ping_after_a_minute_and_wait_20_s_for_the_answer() -> None:
    service = load_settings({}).service
    assert (service.keepalive_s, service.keepalive_timeout_s) == (60.0, 20.0)


def test_both_come_from_the_environment() -> None:
    service = load_settings(
        {
            "FEATURESTORE_SERVICE__KEEPALIVE_S": "2.5",
            "FEATURESTORE_SERVICE__KEEPALIVE_TIMEOUT_S": "3",
        }
    ).service
    assert (service.keepalive_s, service.keepalive_timeout_s) == (2.5, 3.0)


@pytest.mark.parametrize("variable", ["KEEPALIVE_S", "KEEPALIVE_TIMEOUT_S"])
@pytest.mark.parametrize("value", ["0.5", "0", "-1"])
def test_less_than_a_second_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({f"FEATURESTORE_SERVICE__{variable}": value})
    assert f"FEATURESTORE_SERVICE__{variable}: Input should be greater than or equal to 1" in str(
        info.value
    )


def test_the_server_pings_and_times_its_pings_out_as_set() -> None:
    options = dict(keepalive_options(ServiceSettings(keepalive_s=2.0, keepalive_timeout_s=3.5)))
    assert options["grpc.keepalive_time_ms"] == 2_000
    assert options["grpc.keepalive_timeout_ms"] == 3_500
    assert options["grpc.http2.ping_timeout_ms"] == 3_500  # grpcio times its pings out by this one
    assert options["grpc.http2.max_pings_without_data"] == 0  # keeps pinging a quiet stream


def test_the_server_allows_the_clients_pings_on_a_quiet_stream() -> None:
    # Pinged more often than this on a quiet stream, a server ends it with GOAWAY "too many
    # pings" (the Go client pings every 30 s too).
    floor_ms = dict(keepalive_options(ServiceSettings()))[
        "grpc.http2.min_ping_interval_without_data_ms"
    ]
    assert floor_ms <= dict(KEEPALIVE_OPTIONS)["grpc.keepalive_time_ms"]
