"""A child process of the server's event loop, started without running fork handlers.

Why not ``asyncio.create_subprocess_exec``: uvloop, the server's loop, starts a child with
``fork()``, and ``fork()`` runs every ``pthread_atfork`` handler of the process, gRPC's among
them. gRPC's handlers stop its threads in the parent and start them again on both sides, or skip
("Other threads are currently calling into gRPC, skipping fork() handlers") while a call is in
flight. With a server's calls in flight, children died in them before they could exec (a
``Check failed`` abort in gRPC's poller: 13 of 4,432 starts under load), and a test process that
served gRPC died of a segmentation fault in CI after such a start. ``subprocess.Popen`` starts the
child with ``vfork()`` (or ``posix_spawn``), which runs no handler: the child only execs. Its exit
is awaited on the loop through a pidfd, so no thread waits for it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping
from collections.abc import Sequence

__all__ = ["ChildProcess"]


class ChildProcess:
    """A started child: its stdout as a stream, its exit as something to await."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdout: asyncio.StreamReader,
        exited: asyncio.Future[int],
    ) -> None:
        """Use :meth:`start`."""
        self._popen = popen
        self.stdout = stdout
        self._exited = exited

    @classmethod
    async def start(
        cls, command: Sequence[str], *, stdin: int, env: Mapping[str, str]
    ) -> ChildProcess:
        """Start ``command`` reading the file descriptor ``stdin``; its stdout is a pipe to us.

        Raises :class:`OSError` when it cannot start (the command missing, say).
        """
        loop = asyncio.get_running_loop()
        popen = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, env=env, bufsize=0)
        assert popen.stdout is not None
        stdout = asyncio.StreamReader()
        try:
            await loop.connect_read_pipe(lambda: _ReadToEnd(stdout), popen.stdout)
        except BaseException:
            popen.kill()
            popen.wait()
            raise
        return cls(popen, stdout, _exit_of(popen, loop))

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._popen.pid

    async def wait(self) -> int:
        """Wait for the child to exit; its exit code (-N when signal N ended it)."""
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        """Send SIGKILL, unless it has exited already."""
        if not self._exited.done():
            self._popen.kill()


class _ReadToEnd(asyncio.StreamReaderProtocol):
    """Closes the pipe at its end (uvloop keeps a transport open when its protocol asks to)."""

    def eof_received(self) -> bool:
        """Feed the end to the reader; False: the transport closes."""
        super().eof_received()
        return False


def _exit_of(
    popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop
) -> asyncio.Future[int]:
    """A future of the child's exit code, set when it exits (and the child reaped)."""
    exited: asyncio.Future[int] = loop.create_future()
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):  # not Linux 5.3+: a thread of the default executor waits
        waiting = loop.run_in_executor(None, popen.wait)
        waiting.add_done_callback(lambda done: exited.set_result(done.result()))
        return exited

    def reap() -> None:  # the pidfd is readable once the child has exited
        loop.remove_reader(pidfd)
        os.close(pidfd)
        exited.set_result(popen.wait())

    loop.add_reader(pidfd, reap)
    return exited
