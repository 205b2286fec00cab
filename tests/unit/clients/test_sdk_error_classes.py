"""Every status the server sends reaches a Python SDK caller as its own error class.

The server answers OUT_OF_RANGE (a resume token whose position is gone), FAILED_PRECONDITION (a
model that cannot be served as registered), RESOURCE_EXHAUSTED (``service.max_concurrent_exports``
and stream subscriptions), UNIMPLEMENTED and INTERNAL besides the statuses the SDK had classes
for; each is raised as its class, which the caller can catch without comparing ``.code``. A
gRPC server in this process aborts Predict with the status, and the real client calls it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import featurestore_client
import grpc
import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client import FeatureStoreClientError
from featurestore_client._proto.v1 import prediction_service_pb2

CLASSES = {
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRangeError",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPreconditionError",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhaustedError",
    grpc.StatusCode.UNIMPLEMENTED: "UnimplementedError",
    grpc.StatusCode.INTERNAL: "InternalError",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgumentError",
    grpc.StatusCode.NOT_FOUND: "NotFoundError",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDeniedError",
}


@pytest.fixture(scope="module")
def aborting() -> Iterator[str]:
    """A server whose Predict aborts with the status named by the request's model name."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))

    def predict(
        request: prediction_service_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> prediction_service_pb2.PredictResponse:
        context.abort(grpc.StatusCode[request.model_name], f"scripted {request.model_name}")
        raise AssertionError("abort returned")  # pragma: no cover

    handler = grpc.unary_unary_rpc_method_handler(
        predict,
        request_deserializer=prediction_service_pb2.PredictRequest.FromString,
        response_serializer=prediction_service_pb2.PredictResponse.SerializeToString,
    )
    service = grpc.method_handlers_generic_handler(
        "featurestore.v1.PredictionService", {"Predict": handler}
    )
    server.add_generic_rpc_handlers((service,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.mark.parametrize("code", list(CLASSES), ids=lambda code: code.name)
def test_a_status_is_raised_as_its_class(aborting: str, code: grpc.StatusCode) -> None:
    kind = getattr(featurestore_client, CLASSES[code])
    assert issubclass(kind, FeatureStoreClientError)
    with FeatureStoreClient(aborting, token="") as client, pytest.raises(kind) as raised:
        client.predict(code.name, entities={"symbol": ["IBM"]})
    assert type(raised.value) is kind
    assert raised.value.code is code
    assert raised.value.details == f"scripted {code.name}"
