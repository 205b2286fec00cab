"""Loopback ports for the servers a test starts on its own.

Ports are drawn below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``). A port
the kernel handed out with ``bind(0)`` lies inside that range, so once a test's server dies,
any outgoing connection of any process may be given that port as its local end, and the server
started again on it fails with "address in use" (seen in CI: a SIGKILLed Redis could not be
restarted by the supervisor for 30 s).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 20000
"""Above the stack's own defaults (all below 20000) and the registered well-known services."""


def _ephemeral_start() -> int:
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return int(low)
    except (OSError, ValueError, IndexError):
        return 32768


def _all_free(ports: range) -> bool:
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive loopback ports, all free now and none ephemeral."""
    high = _ephemeral_start() - size
    for _ in range(200):
        base = random.randrange(_LOWEST, high)
        if _all_free(range(base, base + size)):
            return base
    raise RuntimeError(f"no {size} consecutive free ports between {_LOWEST} and {high + size}")


def free_port() -> int:
    """A loopback port that is free now and outside the ephemeral range.

    Also the way to name a port where nothing listens, for "server down" tests.
    """
    return free_port_block(1)
