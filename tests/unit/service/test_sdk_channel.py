"""The SDK's targets: one, several (resolved here), or a dns: name; balanced when several."""

from __future__ import annotations

import json

import pytest
from featurestore_client._channel import KEEPALIVE_OPTIONS
from featurestore_client._channel import channel_options
from featurestore_client._channel import open_channel
from featurestore_client._channel import resolve_target


def test_one_target_is_left_to_grpc() -> None:
    one = resolve_target("127.0.0.1:50151")
    assert (one.target, one.balanced) == ("127.0.0.1:50151", False)
    name = resolve_target("dns:///featurestore-grpc.default.svc:50151")
    assert name.balanced and name.target.startswith("dns:///")


def test_several_targets_become_one_address_list() -> None:
    listed = resolve_target(["127.0.0.1:1", "127.0.0.2:2", "127.0.0.1:1"])
    assert listed.target == "ipv4:127.0.0.1:1,127.0.0.2:2" and listed.balanced
    assert resolve_target("127.0.0.1:1, 127.0.0.3:1").target == "ipv4:127.0.0.1:1,127.0.0.3:1"
    named = resolve_target(["localhost:7", "127.0.0.2:7"])
    assert named.target.startswith("ipv4:127.0.0.1:7") and named.authority == "localhost"
    assert resolve_target(["[::1]:5", "[::1]:6"]).target == "ipv6:[::1]:5,[::1]:6"


@pytest.mark.parametrize(
    "bad", ["", [], ["127.0.0.1", "127.0.0.2:1"], ["127.0.0.1:1", "nohost.invalid:1"]]
)
def test_bad_targets_are_refused_with_the_reason(bad: str | list[str]) -> None:
    with pytest.raises(ValueError, match=r"no target|no port|cannot resolve"):
        resolve_target(bad)


def test_several_servers_are_balanced_and_health_checked() -> None:
    options = dict(channel_options(resolve_target(["127.0.0.1:1", "127.0.0.2:1"]), tls=False))
    assert json.loads(str(options["grpc.service_config"])) == {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": "featurestore.v1.FeatureService"},
    }
    assert "grpc.default_authority" not in options


def test_one_server_keeps_grpc_defaults_but_keepalives_and_given_options_win() -> None:
    assert channel_options(resolve_target("127.0.0.1:1"), tls=False) == list(KEEPALIVE_OPTIONS)
    off = [("grpc.keepalive_time_ms", 2**31 - 1)]
    got = dict(channel_options(resolve_target("127.0.0.1:1"), tls=False, options=off))
    assert got["grpc.keepalive_time_ms"] == 2**31 - 1
    named = resolve_target(["localhost:1", "127.0.0.2:1"])
    options = dict(
        channel_options(
            named,
            tls=True,
            options=[("grpc.service_config", "{}")],
            health_check_service=None,
        )
    )
    assert options["grpc.service_config"] == "{}"
    assert options["grpc.ssl_target_name_override"] == "localhost"
    unchecked = dict(channel_options(named, tls=False, health_check_service=None))
    assert "healthCheckConfig" not in json.loads(str(unchecked["grpc.service_config"]))


def test_a_channel_opens_on_several_targets() -> None:
    open_channel(["127.0.0.1:1", "127.0.0.2:1"], credentials=None).close()
