"""The channel to one server, to several, or to a name that resolves to several.

gRPC balances per call on the client, not per connection: with ``round_robin`` the channel keeps
a connection to every address the target resolves to and sends each call to the next ready one.
With a health check configured, gRPC also watches each server's ``grpc.health.v1`` status and
sends nothing to one that says NOT_SERVING (a server draining on SIGTERM says so first, so its
calls move to the others before it closes). A server that dies is dropped when its connection
breaks; the calls that were on it fail UNAVAILABLE and the client's retry sends them elsewhere.

Targets:

* ``"host:port"``: one server (or a proxy in front of several); gRPC's default ``pick_first``.
* ``"dns:///name:port"``: every address of the name (a Kubernetes headless Service, for example),
  re-resolved when a connection fails; ``round_robin``.
* ``["host1:port", "host2:port", ...]`` (or the same comma-separated): these servers, each name
  resolved once here; ``round_robin``.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

__all__ = [
    "DEFAULT_HEALTH_SERVICE",
    "KEEPALIVE_OPTIONS",
    "ChannelTarget",
    "channel_options",
    "open_channel",
    "resolve_target",
]

KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.ping_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)
"""While a call is open (a quiet stream, a call without deadline), the channel pings the
server after 30 s without a frame and drops the connection when no answer comes within 10 s:
the call fails UNAVAILABLE (a stream resumes from its token) instead of waiting for ever on a
connection that died without a reset (a NAT or load balancer that forgot it, a host gone).
Idle channels do not ping. Two traps of grpcio (1.85): it stops after 2 pings without data
unless ``max_pings_without_data`` is 0, which a quiet stream needs, and an unanswered ping ends
the connection after ``http2.ping_timeout_ms`` (1 min by default), not ``keepalive_timeout_ms``.
The server allows pings this often (``featurestore.service.server``; gRPC's default answers
them with GOAWAY "too many pings")."""

DEFAULT_HEALTH_SERVICE = "featurestore.v1.FeatureService"
"""The health status the channel watches by default: the online read path's. The server's own
(empty) name goes NOT_SERVING when any backend is away (MLflow, say), which would leave no
server to read features from although every one can."""


@dataclass(frozen=True)
class ChannelTarget:
    """What the channel is opened on."""

    target: str
    """The gRPC target string."""
    balanced: bool
    """Whether it names several servers (or may: a ``dns:`` name)."""
    authority: str | None = None
    """The host name TLS checks, when ``target`` lists resolved addresses."""


def resolve_target(targets: str | Sequence[str]) -> ChannelTarget:
    """The gRPC target for one target, a comma-separated list or a sequence of them.

    A list is resolved to addresses here: IPv4 ones when there are any, else IPv6 (a gRPC
    target lists one family).

    Raises:
        ValueError: No target, one without a port, or a name that does not resolve.
    """
    items = [targets] if isinstance(targets, str) else list(targets)
    items = [t.strip() for item in items for t in item.split(",") if t.strip()]
    if not items:
        raise ValueError("no target given: pass 'host:port', 'dns:///name:port' or a list")
    if len(items) == 1:
        target = items[0]
        return ChannelTarget(target, balanced=target.startswith("dns:"))
    v4: list[str] = []
    v6: list[str] = []
    for item in items:
        host, port = _split(item)
        for address in _addresses(host, port):
            if ipaddress.ip_address(address).version == 4:
                v4.append(f"{address}:{port}")
            else:
                v6.append(f"[{address}]:{port}")
    first_host = _split(items[0])[0]
    authority = None if _is_ip(first_host) else first_host
    if v4:
        return ChannelTarget("ipv4:" + ",".join(dict.fromkeys(v4)), True, authority)
    return ChannelTarget("ipv6:" + ",".join(dict.fromkeys(v6)), True, authority)


def open_channel(
    targets: str | Sequence[str],
    *,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, int | str]] = (),
    load_balancing: str | None = None,
    health_check_service: str | None = DEFAULT_HEALTH_SERVICE,
) -> grpc.Channel:
    """A channel to ``targets`` (see the module), balanced when they name several servers.

    Args:
        targets: One target, several, or a ``dns:`` name.
        credentials: TLS credentials, or None for plaintext.
        options: Extra channel options (they win over the ones set here).
        load_balancing: ``round_robin`` or ``pick_first``; None: ``round_robin`` for several
            servers or a ``dns:`` name, gRPC's default otherwise.
        health_check_service: The ``grpc.health.v1`` service name each server is watched
            under when balancing; None: no health checking.
    """
    resolved = resolve_target(targets)
    merged = channel_options(
        resolved,
        tls=credentials is not None,
        options=options,
        load_balancing=load_balancing,
        health_check_service=health_check_service,
    )
    if credentials is not None:
        return grpc.secure_channel(resolved.target, credentials, options=merged)
    return grpc.insecure_channel(resolved.target, options=merged)


def channel_options(
    resolved: ChannelTarget,
    *,
    tls: bool,
    options: Sequence[tuple[str, int | str]] = (),
    load_balancing: str | None = None,
    health_check_service: str | None = DEFAULT_HEALTH_SERVICE,
) -> list[tuple[str, int | str]]:
    """The channel options for ``resolved`` (see :func:`open_channel`); ``options`` win."""
    policy = load_balancing or ("round_robin" if resolved.balanced else None)
    own: list[tuple[str, int | str]] = list(KEEPALIVE_OPTIONS)
    if policy is not None:
        config: dict[str, object] = {"loadBalancingConfig": [{policy: {}}]}
        if health_check_service is not None:
            config["healthCheckConfig"] = {"serviceName": health_check_service}
        own.append(("grpc.service_config", json.dumps(config)))
    if resolved.authority is not None:
        own.append(("grpc.default_authority", resolved.authority))
        if tls:
            own.append(("grpc.ssl_target_name_override", resolved.authority))
    given = {name for name, _ in options}
    return [o for o in own if o[0] not in given] + list(options)


def _split(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"target {target!r} has no port: give it as host:port")
    return host.strip("[]"), int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _addresses(host: str, port: int) -> list[str]:
    if _is_ip(host):
        return [host]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve {host!r}: {exc.strerror or exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
