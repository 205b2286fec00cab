"""Demo data: trades with injected anomalies and reference feature rows in offline tables."""

from __future__ import annotations

from models.demo.market import TRADE_COLUMNS, Injection, inject, plan_injections, trades_frame
from models.demo.tables import (
    DemoData,
    demo_definitions,
    demo_market,
    write_features,
)

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
