"""The vendor's REST API: trades and quotes of a ticker over a time range, page by page.

``GET {base}/v3/trades/{ticker}?timestamp.gte=<ns>&timestamp.lt=<ns>&order=asc&sort=timestamp
&limit=<n>`` answers ``{"status": "OK", "results": [...], "next_url": "..."}``; ``next_url``
(absolute, carrying the vendor's cursor) is followed until absent. The key travels in the
``Authorization: Bearer`` header, which the vendor accepts like the ``apiKey`` parameter, so
that it is in no URL and no log line.

Failures, stated rules:

- ``429 Too Many Requests`` is waited out: ``Retry-After`` seconds (or its HTTP date), capped at
  ``max_retry_after_s``, or the backoff when the header is absent; then the same page again.
- a connection error, a timeout or a 5xx is retried with capped, jittered backoff, up to
  ``retries`` times, then :class:`~featurestore.errors.BackendUnavailableError` naming the path.
- 401/403 (a refused key or plan) and other 4xx are
  :class:`~featurestore.errors.ConfigurationError` at once, with the vendor's message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.events.codec import to_micros
from featurestore.ingest.sources.base import SourceRecord
from featurestore.ingest.vendor.records import rest_quote
from featurestore.ingest.vendor.records import rest_trade
from featurestore.resilience import Backoff

__all__ = ["RestClient", "RestStats"]

logger = logging.getLogger(__name__)

Kind = Literal["trade", "quote"]
_PATHS: Mapping[Kind, str] = {"trade": "trades", "quote": "quotes"}


@dataclass
class RestStats:
    """What a client asked for and met (read by tests and the CLI's summary)."""

    requests: int = 0
    pages: int = 0
    results: int = 0
    rate_limited: int = 0
    """429 answers waited out."""
    retried: int = 0
    """Connection errors and 5xx answers retried."""
    waited_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class RestClient:
    """Reads trades and quotes from the vendor's REST API as source records."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        page_limit: int = 50_000,
        timeout_s: float = 30.0,
        retries: int = 8,
        max_retry_after_s: float = 120.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Read ``base_url`` with ``api_key``, retrying 429s and 5xx within the limits given."""
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.page_limit = page_limit
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_retry_after_s = max_retry_after_s
        self.backoff = backoff or Backoff(initial_s=0.5, max_s=30.0)
        self._sleep = sleep
        self.stats = RestStats()
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._session.close()

    def records(
        self, kind: Kind, symbol: str, start: datetime, end: datetime
    ) -> Iterator[SourceRecord]:
        """Yield the vendor's ``kind`` records of ``symbol`` with ``start <= time < end``, in order.

        Raises:
            BackendUnavailableError: the API did not answer after the retries.
            ConfigurationError: the API refused the key or the request.
        """
        convert = rest_trade if kind == "trade" else rest_quote
        url: str | None = f"{self.base_url}/v3/{_PATHS[kind]}/{symbol.upper()}"
        params: dict[str, Any] | None = {
            "timestamp.gte": to_micros(start) * 1000,
            "timestamp.lt": to_micros(end) * 1000,
            "order": "asc",
            "sort": "timestamp",
            "limit": self.page_limit,
        }
        line = 0
        while url is not None:
            body = self._get(url, params)
            params = None  # next_url carries the cursor and the query
            results = body.get("results") or []
            if not isinstance(results, list):
                raise BackendUnavailableError(f"vendor REST {_path(url)}: results is not a list")
            with self.stats.lock:
                self.stats.pages += 1
                self.stats.results += len(results)
            for result in results:
                line += 1
                yield convert(symbol.upper(), result if isinstance(result, dict) else {}, line)
            next_url = body.get("next_url")
            url = next_url if isinstance(next_url, str) and next_url else None

    def _get(self, url: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            with self.stats.lock:
                self.stats.requests += 1
            try:
                response = self._session.get(url, params=params, timeout=self.timeout_s)
            except requests.RequestException as exc:
                self._retry_or_raise(attempt, url, f"{type(exc).__name__.lower()}: {exc}")
                continue
            status = response.status_code
            if status == 429:
                wait = self._retry_after(response, attempt)
                with self.stats.lock:
                    self.stats.rate_limited += 1
                    self.stats.waited_s += wait
                if attempt > self.retries + 1:
                    raise BackendUnavailableError(
                        f"vendor REST {_path(url)}: still rate-limited (429) after {attempt} tries"
                    )
                logger.warning(
                    "vendor REST %s: rate-limited (429), waiting %.1f s", _path(url), wait
                )
                self._sleep(wait)
                continue
            if status >= 500:
                self._retry_or_raise(attempt, url, f"HTTP {status}")
                continue
            if status >= 400:
                raise ConfigurationError(
                    f"vendor REST {_path(url)} refused the request: HTTP {status}"
                    f" {_message(response)}"
                )
            try:
                body = response.json()
            except ValueError:
                self._retry_or_raise(attempt, url, "the answer is not JSON")
                continue
            if not isinstance(body, dict) or body.get("status") not in ("OK", "DELAYED"):
                got = body.get("status") if isinstance(body, dict) else None
                raise ConfigurationError(
                    f"vendor REST {_path(url)} answered status {got!r}: {_message(response)}"
                )
            return body

    def _retry_or_raise(self, attempt: int, url: str, why: str) -> None:
        if attempt > self.retries:
            raise BackendUnavailableError(f"vendor REST {_path(url)}: {why} ({attempt} attempts)")
        delay = self.backoff.delay(attempt)
        with self.stats.lock:
            self.stats.retried += 1
            self.stats.waited_s += delay
        logger.warning("vendor REST %s: %s; retrying in %.1f s", _path(url), why, delay)
        self._sleep(delay)

    def _retry_after(self, response: requests.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After")
        wait: float | None = None
        if header:
            try:
                wait = float(header)
            except ValueError:
                try:
                    wait = parsedate_to_datetime(header).timestamp() - time.time()
                except (TypeError, ValueError):
                    wait = None
        if wait is None:
            wait = self.backoff.delay(attempt)
        return min(max(wait, 0.0), self.max_retry_after_s)


def _path(url: str) -> str:
    """The URL's path only: no host credentials, no query (a cursor is noise in a message)."""
    return urlsplit(url).path or "/"


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body.get("status") or "")[:200]
    return ""
