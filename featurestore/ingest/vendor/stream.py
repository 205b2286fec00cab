"""The vendor's WebSocket: authenticate, subscribe, read trades and quotes, reconnect.

Protocol (as documented for the stocks cluster): on connecting the server sends
``[{"ev":"status","status":"connected"}]``; the client sends ``{"action":"auth","params":KEY}``
and waits for ``auth_success`` (``auth_failed`` ends the feed: a retry cannot fix a key), then
``{"action":"subscribe","params":"T.AAPL,Q.AAPL,..."}``. Every frame is a JSON array of events:
``ev`` ``T`` (trade), ``Q`` (quote) or ``status``.

A connection that breaks (closed by the server, a network error, no pong) is opened again after
a capped, jittered exponential backoff (:class:`~featurestore.resilience.Backoff`), and the
subscriptions are sent again. The vendor does not replay what it sent while the client was away;
the listener is told (:meth:`StreamListener.disconnected`) so that the feed backfills that span
through REST (:mod:`featurestore.ingest.vendor.live`). The backoff starts over once a connection
has delivered an event, so a server that accepts and drops at once is not hammered.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidHandshake
from websockets.exceptions import InvalidURI
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from featurestore.errors import ConfigurationError
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.vendor.records import ws_record
from featurestore.resilience import Backoff

__all__ = ["StreamListener", "VendorStream", "subscriptions"]

logger = logging.getLogger(__name__)

_AUTH_TIMEOUT_S = 10.0


class StreamListener(Protocol):
    """Where a stream delivers what it reads (called from the stream's thread)."""

    def record(self, record: SourceRecord) -> None:
        """One trade or quote, in the order received."""

    def disconnected(self, reason: str) -> None:
        """The connection broke; events sent until it is back are missed."""

    def connected(self, count: int) -> None:
        """Connection number ``count`` is authenticated and subscribed."""


def subscriptions(symbols: Sequence[str], quotes: bool) -> str:
    """The ``params`` of the subscribe message: ``T.<sym>`` (and ``Q.<sym>``) per symbol."""
    channels = [f"T.{s.upper()}" for s in symbols]
    if quotes:
        channels += [f"Q.{s.upper()}" for s in symbols]
    return ",".join(channels)


class _AuthFailedError(Exception):
    pass


class VendorStream:
    """One WebSocket feed of trades (and quotes) for a list of symbols, kept connected."""

    def __init__(
        self,
        url: str,
        api_key: SecretStr,
        symbols: Sequence[str],
        *,
        quotes: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        """Subscribe to ``symbols``' trades (and quotes) at ``url``; reconnect with ``backoff``."""
        if not symbols:
            raise ConfigurationError("the live feed needs at least one symbol")
        self.url = url
        self._key = api_key
        self.params = subscriptions(symbols, quotes)
        self.backoff = backoff or Backoff(initial_s=0.5, max_s=30.0)
        self.connections = 0
        """Connections authenticated and subscribed so far."""
        self.disconnects = 0
        self.received = 0
        """Trade and quote events received."""
        self._line = 0
        self._delivered = False

    def run(self, listener: StreamListener, stop: threading.Event) -> None:
        """Read until ``stop`` is set, reconnecting after every break.

        Raises:
            ConfigurationError: the vendor refused the key, or the URL is not a WebSocket URL.
        """
        attempt = 0
        while not stop.is_set():
            self._delivered = False
            try:
                with connect(
                    self.url, open_timeout=10, close_timeout=2, max_size=None, proxy=None
                ) as ws:
                    self._handshake(ws)
                    self.connections += 1
                    listener.connected(self.connections)
                    logger.info("vendor stream: connection %d subscribed", self.connections)
                    self._read(ws, listener, stop)
            except _AuthFailedError as exc:
                raise ConfigurationError(f"the vendor refused the API key: {exc}") from exc
            except InvalidURI as exc:
                raise ConfigurationError(f"vendor WebSocket URL {self.url!r}: {exc}") from exc
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                if stop.is_set():
                    return
                # A connection that delivered events starts the backoff over.
                attempt = 1 if self._delivered else attempt + 1
                self.disconnects += 1
                reason = _reason(exc)
                listener.disconnected(reason)
                delay = self.backoff.delay(attempt)
                logger.warning(
                    "vendor stream: %s; reconnecting in %.1f s (attempt %d)", reason, delay, attempt
                )
                stop.wait(delay)

    def _handshake(self, ws: ClientConnection) -> None:
        ws.send(json.dumps({"action": "auth", "params": self._key.get_secret_value()}))
        while True:
            for event in _events(ws.recv(timeout=_AUTH_TIMEOUT_S)):
                status = event.get("status")
                if event.get("ev") != "status":
                    continue
                if status == "auth_success":
                    ws.send(json.dumps({"action": "subscribe", "params": self.params}))
                    return
                if status == "auth_failed":
                    raise _AuthFailedError(str(event.get("message") or "auth_failed"))

    def _read(self, ws: ClientConnection, listener: StreamListener, stop: threading.Event) -> None:
        """Deliver events until ``stop`` or a break (``ConnectionClosed`` raised to :meth:`run`)."""
        while not stop.is_set():
            try:
                frame = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            for event in _events(frame):
                self._line += 1
                record = ws_record(event, self._line)
                if record is not None:
                    self.received += 1
                    self._delivered = True
                    listener.record(record)
                elif event.get("ev") == "status":
                    logger.info("vendor stream status: %s %s", event.get("status"),
                             event.get("message", ""))  # fmt: skip


def _events(frame: str | bytes) -> list[dict[str, object]]:
    try:
        data = json.loads(frame)
    except ValueError:
        logger.warning("vendor stream: a frame that is not JSON was skipped (%d bytes)", len(frame))
        return []
    if isinstance(data, dict):
        data = [data]
    return [event for event in data if isinstance(event, dict)] if isinstance(data, list) else []


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        return "the vendor closed the connection"
    if isinstance(exc, TimeoutError):
        return "the vendor did not answer in time"
    if isinstance(exc, InvalidHandshake):
        return f"the WebSocket handshake failed ({exc})"
    return f"connection error ({exc.strerror or exc})" if isinstance(exc, OSError) else str(exc)
