"""A follower passes a write on to the leader, and answers once it can read the write itself.

The leader's answer carries the log position its state had reached (``X-Registry-Log-Position``);
the follower waits until it has applied that far before it answers, so that the client reads its
write back from this instance too. A forwarded request is marked (``X-Registry-Forwarded``) and
never forwarded again: an instance that is asked to forward a forwarded write answers 503, and
the instance that forwarded it tries again once the instances agree on the leader.
"""

from __future__ import annotations

import asyncio

import requests
from starlette.requests import Request
from starlette.responses import Response
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import NewConnectionError

from featurestore.schema_registry.errors import ForwardingError
from featurestore.schema_registry.errors import NotLeaderError

__all__ = ["FORWARDED", "POSITION", "Forwarder", "LeaderUnreachableError"]

POSITION = "X-Registry-Log-Position"
"""Response header: the log position the answering instance had applied."""
FORWARDED = "X-Registry-Forwarded"
"""Request header: this request was forwarded by another instance."""
_PASSED_ON = ("content-type", "accept", "authorization")


class LeaderUnreachableError(ForwardingError):
    """No connection to the leader could be opened: the request was not sent (safe to retry)."""


class Forwarder:
    """Sends requests on to another instance over one pool of connections."""

    def __init__(self, timeout_s: float = 15.0) -> None:
        """Forward with a ``timeout_s`` per request."""
        self._session = requests.Session()
        self._timeout_s = timeout_s

    async def forward(self, leader_url: str, request: Request) -> tuple[Response, int]:
        """The leader's answer to ``request``, and the position it reported (0 if none).

        Raises:
            NotLeaderError: ``request`` was itself forwarded here.
            ForwardingError: The leader could not be reached or did not answer in time.
        """
        if request.headers.get(FORWARDED):
            raise NotLeaderError(
                "This instance was sent a write as the leader but does not lead; retry"
            )
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in _PASSED_ON}
        headers[FORWARDED] = "1"
        url = f"{leader_url.rstrip('/')}{request.url.path}"
        try:
            reply = await asyncio.to_thread(
                self._session.request,
                request.method,
                url,
                params=list(request.query_params.multi_items()),
                data=body,
                headers=headers,
                timeout=self._timeout_s,
            )
        except requests.RequestException as exc:
            error = LeaderUnreachableError if _not_sent(exc) else ForwardingError
            raise error(
                f"Error while forwarding the request to the leader at {leader_url}: {_reason(exc)}"
            ) from exc
        try:
            position = int(reply.headers.get(POSITION, "0"))
        except ValueError:
            position = 0
        media_type = reply.headers.get("content-type")
        return Response(reply.content, reply.status_code, media_type=media_type), position

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()


def _not_sent(exc: requests.RequestException) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(
        reason, NewConnectionError | ConnectTimeoutError
    )


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or lost"
    return "the request failed"
