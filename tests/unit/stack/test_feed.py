from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from featurestore.cli import main
from featurestore.config import load_settings
from featurestore.stack.feed import FeedOptions
from featurestore.stack.feed import MarketFeed


def test_feed_replays_files_when_given(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    trades = tmp_path / "t.csv"
    feed = MarketFeed(settings, FeedOptions(trade_files=(trades,), speed=10.0))
    command = feed.command()
    assert command[-5:] == ["ingest", "files", str(trades), "--speed", "10.0"]
    assert feed.marker() in " ".join(command)


def test_feed_defaults_to_the_synthetic_market(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    command = MarketFeed(settings, FeedOptions(rate=50.0, symbols=3)).command()
    assert command[command.index("ingest") + 1] == "synthetic"
    assert command[command.index("--rate") + 1] == "50.0"
    assert command[command.index("--symbols") + 1] == "3"
    assert command[command.index("--jump-probability") + 1] == "1e-05"


def test_the_feeds_market_is_what_the_first_models_demo_is_drawn_from() -> None:
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    market = FeedOptions(rate=50.0, symbols=3, seed=7).market(start)
    assert (market.rate, market.symbols, market.seed) == (50.0, 3, 7)
    assert market.jump_probability == FeedOptions().jump_probability == 1e-5
    assert market.start == start and market.duration_s is None


def test_an_unbounded_flood_is_refused() -> None:
    result = CliRunner().invoke(main, ["ingest", "synthetic", "--fast"])
    assert result.exit_code == 2
    assert "--fast needs a bound" in result.output


def test_a_bad_setting_is_a_one_line_error_naming_the_variable() -> None:
    result = CliRunner().invoke(main, ["stack", "status"], env={"FEATURESTORE_KAFKA__PORT": "abc"})
    assert result.exit_code == 1
    assert "FEATURESTORE_KAFKA__PORT" in result.output
    assert "Traceback" not in result.output
