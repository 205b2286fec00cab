"""The market-data vendor (Polygon.io / Massive): live WebSocket feed, REST backfill, gap heals.

::

    feed = LiveFeed(VendorStream(ws_url, key, symbols), RestClient(rest_url, key), symbols)
    with Ingestor(options, store) as ingestor:  # featurestore ingest live --symbols AAPL,MSFT
        ingestor.run(feed)

Records are mapped to the store's ``Trade`` / ``Quote`` with ids derived from the vendor's own
(:mod:`.records`), so the WebSocket, a backfill and a heal never put one vendor trade in the log
twice (:mod:`.dedupe`, :class:`.CopyFilter`).

Why ``websockets`` and ``requests`` rather than the vendor's client (``massive``, formerly
``polygon-api-client``): its ``WebSocketClient.connect`` (read from its source) does not look
at the auth answer, tells the caller nothing when a connection breaks (a break's span must be
backfilled), gives up after ``max_reconnects`` (5), and keeps the subscriptions it already
sent, so a new connection is not subscribed again; its parsed models drop the raw JSON a dead
letter keeps. The protocol is four message shapes and two paginated GETs; ``websockets`` (pinned
already for the dashboard's browser test) and ``requests`` (a dependency already) keep the
backoff, the resubscription, the 429 waits and the key's handling ours and tested.
"""

from __future__ import annotations

from featurestore.ingest.vendor.backfill import CopyFilter
from featurestore.ingest.vendor.backfill import Healer
from featurestore.ingest.vendor.backfill import HealReport
from featurestore.ingest.vendor.backfill import vendor_records
from featurestore.ingest.vendor.calendar import is_trading_day
from featurestore.ingest.vendor.calendar import session
from featurestore.ingest.vendor.calendar import session_minutes
from featurestore.ingest.vendor.dedupe import RecentIds
from featurestore.ingest.vendor.dedupe import logged_ids
from featurestore.ingest.vendor.gaps import BarsTable
from featurestore.ingest.vendor.gaps import Gap
from featurestore.ingest.vendor.gaps import find_gaps
from featurestore.ingest.vendor.live import LiveFeed
from featurestore.ingest.vendor.live import LiveStats
from featurestore.ingest.vendor.live import heal_window
from featurestore.ingest.vendor.records import quote_id
from featurestore.ingest.vendor.records import rest_quote
from featurestore.ingest.vendor.records import rest_trade
from featurestore.ingest.vendor.records import trade_id
from featurestore.ingest.vendor.records import ws_record
from featurestore.ingest.vendor.rest import RestClient
from featurestore.ingest.vendor.rest import RestStats
from featurestore.ingest.vendor.stream import VendorStream
from featurestore.ingest.vendor.stream import subscriptions

__all__ = [
    "BarsTable",
    "CopyFilter",
    "Gap",
    "HealReport",
    "Healer",
    "LiveFeed",
    "LiveStats",
    "RecentIds",
    "RestClient",
    "RestStats",
    "VendorStream",
    "find_gaps",
    "heal_window",
    "is_trading_day",
    "logged_ids",
    "quote_id",
    "rest_quote",
    "rest_trade",
    "session",
    "session_minutes",
    "subscriptions",
    "trade_id",
    "vendor_records",
    "ws_record",
]
