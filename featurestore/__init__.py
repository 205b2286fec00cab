"""featurestore: an event-sourced feature store for real-time ML on market data."""

from __future__ import annotations

__version__ = "0.1.0"
