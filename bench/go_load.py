"""The benchmarks' load generator outside Python: ``bench/loadgen`` (Go), run and read from here.

``make setup`` (``deploy/bootstrap.sh``) builds it into ``build/bench/loadgen`` whenever its
sources change. It sends pre-serialized request bytes and never decodes a response, so what it
measures is the server (and gRPC), not a client's parser or GIL; its own ceiling is measured
against its own echo server (:func:`go_echo`).

Any benchmark can drive a unary method with it, for example Predict::

    result = drive(target, "/featurestore.v1.PredictionService/Predict",
                   request.SerializeToString(), Load(concurrency=8), seconds=2)
    print(result.qps, result.p99_ms)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOADGEN", "GoEcho", "Load", "LoadResult", "drive", "go_echo"]

LOADGEN = Path(__file__).resolve().parents[1] / "build" / "bench" / "loadgen"
"""The built generator (``make setup`` builds it from ``bench/loadgen``)."""


@dataclass(frozen=True)
class Load:
    """Closed loop with ``concurrency`` calls in flight, or open loop at ``rate`` calls/s."""

    concurrency: int = 1
    rate: float | None = None
    """Calls started per second whether or not earlier ones returned (open loop)."""

    @property
    def label(self) -> str:
        """How the load reads in a table."""
        if self.rate is not None:
            return f"open loop, {self.rate:,.0f} calls/s"
        return f"{self.concurrency} in flight"


@dataclass(frozen=True)
class LoadResult:
    """One run of the generator (its JSON)."""

    calls: int
    errors: int
    late: int
    """Open loop: calls that could not start on schedule (every in-flight slot busy)."""
    seconds: float
    qps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    response_bytes: int
    cpu_s: float
    """The generator's own CPU time over the measurement."""
    first_error: str = ""


def _binary() -> Path:
    if not LOADGEN.exists():
        raise RuntimeError(
            f"{LOADGEN} is missing: run `make setup` (deploy/bootstrap.sh builds it from "
            "bench/loadgen with Go)"
        )
    return LOADGEN


def drive(
    target: str,
    method: str,
    request: bytes,
    load: Load,
    *,
    seconds: float = 2.0,
    metadata: Mapping[str, str] | None = None,
    warmup_calls: int = 20,
    connections: int = 1,
    timeout_s: float = 5.0,
) -> LoadResult:
    """Drive ``method`` (``/package.Service/Method``) on ``target`` with ``request`` bytes.

    Raises:
        RuntimeError: the generator is not built, or failed (its message says why: a warm-up
            call that failed carries the server's status).
    """
    with tempfile.NamedTemporaryFile(prefix="loadgen-request-", suffix=".bin") as file:
        file.write(request)
        file.flush()
        command = [
            str(_binary()),
            f"-target={target}",
            f"-method={method}",
            f"-request={file.name}",
            f"-duration={seconds}s",
            f"-warmup={warmup_calls}",
            f"-connections={connections}",
            f"-timeout={timeout_s}s",
        ]
        if load.rate is not None:
            command.append(f"-rate={load.rate}")
        else:
            command.append(f"-concurrency={load.concurrency}")
        command += [f"-metadata={k}={v}" for k, v in (metadata or {}).items()]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.strip()}")
    fields = json.loads(done.stdout)
    return LoadResult(
        calls=fields["calls"],
        errors=fields["errors"],
        late=fields["late"],
        seconds=fields["seconds"],
        qps=fields["qps"],
        p50_ms=fields["p50_ms"],
        p90_ms=fields["p90_ms"],
        p99_ms=fields["p99_ms"],
        max_ms=fields["max_ms"],
        response_bytes=fields["response_bytes"],
        cpu_s=fields["cpu_s"],
        first_error=fields.get("first_error", ""),
    )


@dataclass(frozen=True)
class GoEcho:
    """The generator's echo server: every method answers ``x-response-size`` bytes."""

    port: int
    pid: int


@contextmanager
def go_echo() -> Iterator[GoEcho]:
    """The generator's echo server on a free loopback port, stopped on exit."""
    child = subprocess.Popen([str(_binary()), "-serve-echo=127.0.0.1:0"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"loadgen -serve-echo exited with {child.wait(5)}")
        yield GoEcho(int(line), child.pid)
    finally:
        child.terminate()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
