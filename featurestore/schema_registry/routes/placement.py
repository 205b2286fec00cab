"""Where a request is served among the registry's instances (:mod:`..cluster`).

A read first passes this instance's read barrier; a write is made here when this instance
leads, else forwarded to the leader. Both answers carry the instance's log position.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from featurestore.schema_registry.cluster import Health
from featurestore.schema_registry.errors import NotLeaderError
from featurestore.schema_registry.forwarding import FORWARDED
from featurestore.schema_registry.forwarding import POSITION
from featurestore.schema_registry.forwarding import Forwarder
from featurestore.schema_registry.forwarding import LeaderUnreachableError
from featurestore.schema_registry.registry import SchemaRegistry
from featurestore.schema_registry.routes._http import Endpoint
from featurestore.schema_registry.routes._http import error_code

__all__ = ["WRITE_WAIT_S", "Node", "Placement"]

WRITE_WAIT_S = 10.0
"""How long a write waits for a leader (an election takes the group's session timeout, 6 s)."""


class Node(Protocol):
    """This instance's place among the registry's instances (see ``cluster``)."""

    @property
    def position(self) -> int:
        """The log position this instance has applied."""
        ...

    def leader_url(self) -> str | None:
        """The leader's URL, or None when this instance leads."""
        ...

    async def before_read(self) -> None:
        """Wait until this instance has applied what the log held when the read came."""
        ...

    def health(self) -> Health:
        """Whether this instance serves, and why not."""
        ...


class Placement:
    """Wraps endpoints as reads (behind the barrier) or writes (here or at the leader)."""

    def __init__(self, registry: SchemaRegistry, node: Node) -> None:
        """Serve ``registry`` as ``node`` of the registry's instances."""
        self.registry = registry
        self.node = node
        self._forwarder = Forwarder()

    def read(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` after the read barrier, its answer stamped with the log position."""

        async def reading(request: Request) -> Response:
            await self.node.before_read()
            response = await endpoint(request)
            response.headers[POSITION] = str(self.node.position)
            return response

        return reading

    def write(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` when this instance leads, else the request forwarded to the leader.

        While a leader is being elected, or the last one does not answer, the write waits (up to
        :data:`WRITE_WAIT_S`) and is tried again: it was not made, so trying again is safe.
        """

        async def writing(request: Request) -> Response:
            deadline = time.monotonic() + WRITE_WAIT_S
            while True:
                try:
                    return await self._write_once(endpoint, request)
                except (NotLeaderError, LeaderUnreachableError):
                    if request.headers.get(FORWARDED) or time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.1)

        return writing

    async def _write_once(self, endpoint: Endpoint, request: Request) -> Response:
        leader = self.node.leader_url()
        if leader is None:
            response = await endpoint(request)
            response.headers[POSITION] = str(self.node.position)
            return response
        response, position = await self._forwarder.forward(leader, request)
        if response.status_code == 503 and error_code(response) == NotLeaderError.error_code:
            # The instance the log names no longer leads (the lead is changing hands).
            raise NotLeaderError(f"{leader} no longer leads; retry")
        await self.registry.wait_applied(position, WRITE_WAIT_S)
        return response
