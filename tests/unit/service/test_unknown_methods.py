"""Calls of methods the server does not have cost it nothing that stays."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from featurestore.service.telemetry import RpcTelemetry
from featurestore.service.wrapping import MethodWrapper
from featurestore.service.wrapping import _WrappedGeneric
from featurestore.telemetry import Telemetry


@dataclass(frozen=True)
class _Details:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


def test_unknown_method_names_are_not_remembered() -> None:
    # Before any token check: each made-up name kept a cache entry, 85 MB for 20,000 calls.
    handler = grpc.method_handlers_generic_handler(
        "pkg.Svc", {"Get": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    )
    wrapped = _WrappedGeneric(handler, MethodWrapper(RpcTelemetry(Telemetry.disabled())))
    for i in range(1000):
        assert wrapped.service(_Details(f"/pkg.Svc/Nope{i}")) is None
    known = wrapped.service(_Details("/pkg.Svc/Get"))
    assert known is not None and wrapped.service(_Details("/pkg.Svc/Get")) is known
    assert list(wrapped._wrapped) == ["/pkg.Svc/Get"]
