"""The server's child process: started with no fork handler run, read and awaited on the loop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Any

import pytest

from featurestore.service.child_process import ChildProcess
from featurestore.service.server import new_event_loop

UPPER = [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"]

_forks: list[int] = []
os.register_at_fork(before=lambda: _forks.append(os.getpid()))


def run_on(kind: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as runner:
        return runner.run(main())


async def echo_upper(text: bytes) -> tuple[bytes, int]:
    read_end, write_end = os.pipe()
    try:
        child = await ChildProcess.start(UPPER, stdin=read_end, env=dict(os.environ))
    finally:
        os.close(read_end)
    os.write(write_end, text)
    os.close(write_end)
    return await child.stdout.read(), await child.wait()


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_a_child_reads_its_stdin_and_is_awaited_and_no_fork_handler_runs(kind: str) -> None:
    """uvloop's own subprocess_exec forks, which runs every atfork handler (gRPC's among them)."""
    before = len(_forks)
    assert run_on(kind, lambda: echo_upper(b"prediction log")) == (b"PREDICTION LOG", 0)
    assert len(_forks) == before


def test_a_killed_child_is_awaited_with_its_signal() -> None:
    async def main() -> tuple[int, int]:
        read_end, write_end = os.pipe()  # stdin left open: the child waits on it until killed
        try:
            child = await ChildProcess.start(UPPER, stdin=read_end, env=dict(os.environ))
        finally:
            os.close(read_end)
        child.kill()
        code = await asyncio.wait_for(child.wait(), 10)
        os.close(write_end)
        child.kill()  # exited already: nothing is sent
        return code, await child.wait()

    assert run_on("uvloop", main) == (-signal.SIGKILL, -signal.SIGKILL)


def test_a_command_that_cannot_start_raises_oserror() -> None:
    async def main() -> None:
        read_end, _ = os.pipe()
        await ChildProcess.start(["/nonexistent/writer"], stdin=read_end, env={})

    with pytest.raises(FileNotFoundError):
        run_on("uvloop", main)


def test_without_pidfds_the_exit_is_awaited_on_an_executor_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "pidfd_open")
    assert run_on("uvloop", lambda: echo_upper(b"x")) == (b"X", 0)
