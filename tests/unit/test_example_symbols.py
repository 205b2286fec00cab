"""The clients' quick start examples read symbols that ``make run``'s feed produces.

``make run`` feeds the synthetic market (:class:`featurestore.stack.feed.FeedOptions`), whose
tickers are drawn from its seed; an example whose default symbols are not among them prints
NOT_FOUND for every feature. The examples default to the two most traded tickers.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from featurestore.ingest.sources.synthetic import MarketConfig
from featurestore.ingest.sources.synthetic import SyntheticMarket
from featurestore.stack.feed import FeedOptions

CLIENTS = Path(__file__).resolve().parents[2] / "clients"

# Where each example and README states its default symbols.
DEFAULTS = {
    "python/examples/quickstart.py": r'symbols: str = "([A-Z,]+)"',
    "go/examples/quickstart/main.go": r'flag\.String\("symbols", "([A-Z,]+)"',
    "typescript/examples/quickstart.ts": r'symbols: \{ type: "string", default: "([A-Z,]+)" \}',
    "go/README.md": r"-symbols ([A-Z,]+)",
}


def _most_traded(count: int) -> list[str]:
    """The ``count`` most traded tickers of the synthetic market ``make run`` feeds."""
    options = FeedOptions()
    assert not options.trade_files and not options.live_symbols  # the synthetic market
    market = SyntheticMarket(
        MarketConfig(
            start=datetime(2026, 1, 1, tzinfo=UTC), seed=options.seed, symbols=options.symbols
        )
    )
    # Popularity falls with the ticker's index (Zipf-like weights), so the first are the busiest.
    assert list(market._weights) == sorted(market._weights, reverse=True)
    return market.symbols[:count]


@pytest.mark.parametrize("path", sorted(DEFAULTS))
def test_example_defaults_are_fed_by_make_run(path: str) -> None:
    match = re.search(DEFAULTS[path], (CLIENTS / path).read_text())
    assert match is not None, f"{path}: no default symbols found"
    assert match.group(1).split(",") == _most_traded(2)


def test_python_readme_reads_fed_symbols() -> None:
    text = (CLIENTS / "python" / "README.md").read_text()
    fed = set(_most_traded(2))
    named = set(re.findall(r'"symbol": \[([^\]]*)\]', text))
    symbols = {s.strip().strip('"') for group in named for s in group.split(",")}
    assert symbols and symbols <= fed, f"README names {sorted(symbols - fed)}, not fed"
