"""An export whose client process is killed (SIGKILL) while the server writes to it.

The client reads the first two pieces of a large export and stops reading, so that the server is
blocked sending the next piece when the client dies: the failed send is what gRPC's own stream
loop logged as an ERROR with a traceback (``ExecuteBatchError raised in core``). The server is to
say it once, at INFO, naming the method, and count the call CANCELLED.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from featurestore.stack.process import wait_until
from featurestore.telemetry import Telemetry
from tests.integration.service.offline_data import T0
from tests.integration.service.offline_data import Offline

pytestmark = pytest.mark.integration

METHOD = "/featurestore.v1.DatasetService/ExportTrainingDataset"
ABANDONED = "call abandoned by the client"

_CLIENT = """
import sys, time
from datetime import timedelta

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from featurestore._proto.v1 import dataset_service_pb2, dataset_service_pb2_grpc, types_pb2

target, start_s = sys.argv[1], int(sys.argv[2])
start, end, step = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp(), duration_pb2.Duration()
start.FromSeconds(start_s)
end.FromSeconds(start_s + 3600)
step.FromTimedelta(timedelta(milliseconds=10))  # 360,000 rows a symbol
request = dataset_service_pb2.ExportTrainingDatasetRequest(
    features=types_pb2.FeatureList(features=["bars_1m:close"]),
    time_grid=dataset_service_pb2.EntityTimeGrid(
        symbols=["AAA", "BBB"], start_time=start, end_time=end, step=step
    ),
)
# A fixed flow-control window: with BDP probing, a loaded machine's longer round trips let the
# window grow past the whole export (16.6 MB), which then ends before the client is killed.
with grpc.insecure_channel(target, options=[("grpc.http2.bdp_probe", 0)]) as channel:
    stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    responses = stub.ExportTrainingDataset(request, timeout=300)
    next(responses), next(responses)
    print("reading no more", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def server(
    offline: Offline, start_server: Callable[..., ServerThread], telemetry: Telemetry
) -> ServerThread:
    access = OfflineAccess(offline.settings, "unused", load=lambda _s, _p: offline.definitions)
    return start_server(offline=access, telemetry=telemetry)


def _cancelled(telemetry: Telemetry) -> float:
    assert telemetry.registry is not None
    value = telemetry.registry.get_sample_value(
        "featurestore_grpc_server_handling_seconds_count",
        {
            "grpc_service": "featurestore.v1.DatasetService",
            "grpc_method": "ExportTrainingDataset",
            "grpc_code": "CANCELLED",
        },
    )
    return value or 0.0


def test_a_killed_client_is_one_info_line_and_a_cancelled_call(
    server: ServerThread, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with subprocess.Popen(
        [sys.executable, "-c", _CLIENT, server.target, str(int(T0.timestamp()))],
        stdout=subprocess.PIPE,
        text=True,
    ) as client:
        try:
            assert client.stdout is not None
            assert client.stdout.readline().strip() == "reading no more"
            # The server goes on until the client's flow-control window is full, then waits.
            time.sleep(1.0)
            os.kill(client.pid, signal.SIGKILL)
        finally:
            client.kill()

    def said() -> bool:
        return any(
            ABANDONED in r.getMessage() or r.levelno >= logging.ERROR for r in caplog.records
        )

    assert wait_until(said, timeout=20.0), [r.getMessage() for r in caplog.records]
    assert wait_until(lambda: _cancelled(telemetry) == 1, timeout=10.0), _cancelled(telemetry)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [f"{r.levelname} {r.name}: {r.getMessage()}" for r in errors]
    lines = [r for r in caplog.records if ABANDONED in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.INFO
    assert lines[0].getMessage().startswith(f"{METHOD}: {ABANDONED}")
