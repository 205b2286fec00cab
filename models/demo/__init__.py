"""Demo data: trades with injected anomalies and reference feature rows in offline tables."""

from __future__ import annotations

from models.demo.market import TRADE_COLUMNS
from models.demo.market import Injection
from models.demo.market import inject
from models.demo.market import plan_injections
from models.demo.market import trades_frame
from models.demo.tables import DemoData
from models.demo.tables import demo_definitions
from models.demo.tables import demo_market
from models.demo.tables import write_features

__all__ = [
    "TRADE_COLUMNS",
    "DemoData",
    "Injection",
    "demo_definitions",
    "demo_market",
    "inject",
    "plan_injections",
    "trades_frame",
    "write_features",
]
