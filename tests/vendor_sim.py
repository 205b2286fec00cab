"""A local stand-in for the market-data vendor (Polygon.io / Massive): WebSocket + REST on loopback.

Only the vendor is simulated; everything after it (Kafka, the schema registry, PostgreSQL) is
the real stack. It speaks the documented protocol:

- WebSocket: ``connected`` status on connect, ``{"action":"auth"}`` -> ``auth_success`` or
  ``auth_failed``, ``{"action":"subscribe","params":"T.IBM,Q.IBM"}`` -> ``success``, then JSON
  arrays of ``T`` / ``Q`` events (``sym x i p s c t q`` and ``bx bp bs ax ap as``).
- REST: ``GET /v3/trades/{ticker}`` and ``/v3/quotes/{ticker}`` with ``timestamp.gte``,
  ``timestamp.lt`` (ns), ``order``, ``sort``, ``limit``; pages of at most ``page_size`` results
  and a ``next_url`` carrying a cursor; ``Authorization: Bearer`` or ``apiKey``.

The tape is real: the trades (and quotes) of the shared LEAN files of one day, read through the
project's own adapter, within a time window. Each trade gets the vendor's fields: ``i`` its line
number, ``x`` an exchange number from its letter, ``q`` a sequence number. Faults on demand:
``drops`` (tape positions at which the WebSocket connection is cut without a close frame; the
market moves on by ``lost`` events, which only REST can give back) and ``rate_limit_every``
(every n-th REST request answered ``429`` with ``Retry-After``).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve

from featurestore.events.codec import to_micros
from featurestore.ingest.sources.lean import LeanQuoteFile
from featurestore.ingest.sources.lean import LeanTradeFile

__all__ = ["VendorSimulator", "load_tape"]

MARKET = Path("/work/shared/data/market")
NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class TapeEvent:
    """One vendor event: its channel (``T`` or ``Q``), symbol, SIP time (ns) and REST body."""

    channel: str
    symbol: str
    sip_ns: int
    rest: dict[str, Any]
    ws: dict[str, Any]


def _exchange(letter: object) -> int:
    text = str(letter or "?")
    return ord(text[0].upper()) - ord("A") + 1


def _ns(when: datetime) -> int:
    return to_micros(when) * 1000


def load_tape(
    day: date, symbols: Iterable[str], start: time, end: time, *, quotes: bool = False
) -> list[TapeEvent]:
    """The day's trades (and quotes) of ``symbols`` in ``[start, end)`` New York time, by time."""
    lo = _ns(datetime.combine(day, start, NEW_YORK).astimezone(UTC))
    hi = _ns(datetime.combine(day, end, NEW_YORK).astimezone(UTC))
    events: list[TapeEvent] = []
    for symbol in symbols:
        stem = f"{day:%Y%m%d}_{symbol.lower()}"
        for record in LeanTradeFile(MARKET / f"{stem}_Trade_Tick.csv.gz"):
            f = record.fields
            if record.reject is not None or not isinstance(f["event_time"], datetime):
                continue
            ns = _ns(f["event_time"])
            if not lo <= ns < hi:
                continue
            flags = f.get("conditions", ())
            hexes = flags if isinstance(flags, tuple) else ()
            codes = [int(c, 16) % 100 for c in hexes if int(c, 16)]
            x = _exchange(f.get("exchange"))
            rest = {
                "id": str(record.line), "exchange": x, "price": f["price"], "size": f["size"],
                "conditions": codes, "sip_timestamp": ns, "participant_timestamp": ns,
                "sequence_number": record.line, "tape": 1,
            }  # fmt: skip
            ws = {
                "ev": "T", "sym": symbol.upper(), "i": str(record.line), "x": x,
                "p": f["price"], "s": f["size"], "c": codes, "t": ns // 1_000_000,
                "q": record.line, "z": 1,
            }  # fmt: skip
            events.append(TapeEvent("T", symbol.upper(), ns, rest, ws))
        quote_file = MARKET / f"{stem}_Quote_Tick.csv.gz"
        if quotes and quote_file.exists():
            for record in LeanQuoteFile(quote_file):
                f = record.fields
                if record.reject is not None or not isinstance(f["event_time"], datetime):
                    continue
                if f["bid_price"] > f["ask_price"]:  # type: ignore[operator]
                    continue  # the files' few crossed books: a clean NBBO tape
                ns = _ns(f["event_time"])
                if not lo <= ns < hi:
                    continue
                x = _exchange(f.get("exchange"))
                rest = {
                    "bid_exchange": x, "bid_price": f["bid_price"], "bid_size": f["bid_size"],
                    "ask_exchange": x, "ask_price": f["ask_price"], "ask_size": f["ask_size"],
                    "sip_timestamp": ns, "participant_timestamp": ns,
                    "sequence_number": record.line, "tape": 1,
                }  # fmt: skip
                ws = {
                    "ev": "Q", "sym": symbol.upper(), "bx": x, "bp": f["bid_price"],
                    "bs": f["bid_size"], "ax": x, "ap": f["ask_price"], "as": f["ask_size"],
                    "t": ns // 1_000_000, "q": record.line, "z": 1,
                }  # fmt: skip
                events.append(TapeEvent("Q", symbol.upper(), ns, rest, ws))
    events.sort(key=lambda e: (e.sip_ns, e.channel, e.symbol))
    return events


@dataclass
class SimStats:
    """What the simulator served (tests read it)."""

    connections: int = 0
    drops: int = 0
    ws_sent: int = 0
    rest_requests: int = 0
    rate_limited: int = 0
    auth_failures: int = 0
    sent_ids: list[str] = field(default_factory=list)
    """``<channel>:<symbol>:<i or q>`` of every event sent on the WebSocket."""


class VendorSimulator:
    """The vendor on loopback: ``ws_url`` and ``rest_url`` to point the adapter at."""

    def __init__(
        self,
        tape: list[TapeEvent],
        *,
        api_key: str = "test-key",
        drops: Iterable[int] = (),
        lost: int = 200,
        batch: int = 50,
        page_size: int = 1000,
        rate_limit_every: int = 0,
        retry_after: str = "1",
    ) -> None:
        self.tape = tape
        self.api_key = api_key
        self.drops = sorted(drops)
        self.lost = lost
        self.batch = batch
        self.page_size = page_size
        self.rate_limit_every = rate_limit_every
        self.retry_after = retry_after
        self.stats = SimStats()
        self.cursor = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ws: Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> VendorSimulator:
        self._ws = serve(self._handle_ws, "127.0.0.1", 0, compression=None)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http.daemon_threads = True
        for target in (self._ws.serve_forever, self._http.serve_forever):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._ws is not None:
            self._ws.shutdown()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def ws_url(self) -> str:
        assert self._ws is not None
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/stocks"

    @property
    def rest_url(self) -> str:
        assert self._http is not None
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def finished(self) -> bool:
        """Whether the WebSocket tape has been played to its end."""
        return self.cursor >= len(self.tape)

    # -- WebSocket ------------------------------------------------------------------------------

    def _handle_ws(self, ws: ServerConnection) -> None:
        try:
            ws.send(json.dumps([{"ev": "status", "status": "connected", "message": "Connected"}]))
            auth = json.loads(ws.recv(timeout=10))
            if auth.get("action") != "auth" or auth.get("params") != self.api_key:
                self.stats.auth_failures += 1
                ws.send(json.dumps([{"ev": "status", "status": "auth_failed",
                                     "message": "authentication failed"}]))  # fmt: skip
                ws.close()
                return
            ws.send(json.dumps([{"ev": "status", "status": "auth_success",
                                 "message": "authenticated"}]))  # fmt: skip
            sub = json.loads(ws.recv(timeout=10))
            channels = set(str(sub.get("params", "")).split(","))
            ws.send(json.dumps([{"ev": "status", "status": "success",
                                 "message": f"subscribed to: {sub.get('params')}"}]))  # fmt: skip
            self.stats.connections += 1
            self._stream(ws, channels)
        except (ConnectionClosed, TimeoutError, OSError):
            return

    def _stream(self, ws: ServerConnection, channels: set[str]) -> None:
        while not self._stopping.is_set():
            drop_at: int | None = None
            with self._lock:
                start = self.cursor
                if start >= len(self.tape):
                    chunk: list[TapeEvent] = []
                else:
                    stop = min(start + self.batch, len(self.tape))
                    drop_at = next((d for d in self.drops if start <= d < stop), None)
                    if drop_at is not None:
                        stop = drop_at
                    chunk = self.tape[start:stop]
                    self.cursor = stop
                    if drop_at is not None:
                        self.drops.remove(drop_at)
                        self.cursor = min(len(self.tape), drop_at + self.lost)
            frame = [e.ws for e in chunk if f"{e.channel}.{e.symbol}" in channels]
            if frame:
                ws.send(json.dumps(frame))
                self.stats.ws_sent += len(frame)
                self.stats.sent_ids += [f"{e['ev']}:{e['sym']}:{e.get('i', e['q'])}" for e in frame]
            if drop_at is not None:
                self.stats.drops += 1
                ws.close_socket()  # no close frame: the network went away
                return
            if not chunk:
                try:
                    ws.recv(timeout=0.2)  # idle at the tape's end until the client leaves
                except TimeoutError:
                    continue

    # -- REST -----------------------------------------------------------------------------------

    def rest_page(self, channel: str, symbol: str, query: dict[str, str]) -> dict[str, Any]:
        """One page of results and the next_url of the rest."""
        if "cursor" in query:
            query = json.loads(base64.urlsafe_b64decode(query["cursor"]))
        lo = int(query.get("timestamp.gte", 0))
        hi = int(query.get("timestamp.lt", 2**63))
        limit = min(int(query.get("limit", 1000)), self.page_size)
        offset = int(query.get("offset", 0))
        matching = [
            e.rest for e in self.tape
            if e.channel == channel and e.symbol == symbol and lo <= e.sip_ns < hi
        ]  # fmt: skip
        page = matching[offset : offset + limit]
        body: dict[str, Any] = {"status": "OK", "request_id": "sim", "results": page}
        if offset + limit < len(matching):
            token = {**query, "offset": offset + limit}
            cursor = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            path = "trades" if channel == "T" else "quotes"
            body["next_url"] = f"{self.rest_url}/v3/{path}/{symbol}?cursor={cursor}"
        return body


def _rest_handler(sim: VendorSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with sim._lock:
                sim.stats.rest_requests += 1
                number = sim.stats.rest_requests
            key = query.pop("apiKey", None) or self.headers.get("Authorization", "").removeprefix(
                "Bearer "
            )
            if key != sim.api_key:
                self._answer(401, {"status": "ERROR", "message": "Unknown API Key"}, {})
                return
            if sim.rate_limit_every and number % sim.rate_limit_every == 0:
                with sim._lock:
                    sim.stats.rate_limited += 1
                self._answer(
                    429,
                    {"status": "ERROR", "message": "You've exceeded the maximum requests"},
                    {"Retry-After": sim.retry_after},
                )
                return
            parts = url.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "v3" or parts[1] not in ("trades", "quotes"):
                self._answer(404, {"status": "NOT_FOUND", "message": "no such path"}, {})
                return
            channel = "T" if parts[1] == "trades" else "Q"
            self._answer(200, sim.rest_page(channel, parts[2].upper(), query), {})

    return Handler
