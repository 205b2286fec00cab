"""A StreamPredictions client run as its own process, so that a test can kill it with SIGKILL.

``python -m tests.integration.service.prediction_client TARGET MODEL SYMBOLS START`` where START
is ``time:ISO`` or ``token:TOKEN``; prints one JSON line per prediction (id and resume token),
flushed at once. The generated stub, no SDK: the test is of the RPC.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import grpc

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import prediction_service_pb2_grpc
from featurestore._proto.v1 import types_pb2

_STUB = prediction_service_pb2_grpc.PredictionServiceStub


def main(target: str, model: str, symbols: str, start: str) -> None:
    kind, _, value = start.partition(":")
    request = prediction_service_pb2.StreamPredictionsRequest(
        model_name=model,
        entities={
            "symbol": types_pb2.ValueList(
                values=[types_pb2.Value(string_value=s) for s in symbols.split(",")]
            )
        },
    )
    if kind == "time":
        request.start_time.FromDatetime(datetime.fromisoformat(value))
    else:
        request.resume_token = value
    with grpc.insecure_channel(target) as channel:
        stub = _STUB(channel)  # type: ignore[no-untyped-call]
        for response in stub.StreamPredictions(request):
            if response.HasField("prediction"):
                line = {"id": response.prediction.prediction_id, "token": response.resume_token}
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
