"""The live feed as a service of the stack, and the CLI's answers to bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import main
from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.stack.feed import FeedOptions
from featurestore.stack.feed import MarketFeed


def test_make_run_live_starts_the_live_ingest_as_the_stacks_feed() -> None:
    feed = MarketFeed(load_settings({}), FeedOptions(live_symbols=("AAPL", "MSFT")))
    assert feed.command()[-4:] == ["ingest", "live", "--symbols", "AAPL,MSFT"]
    synthetic = MarketFeed(load_settings({}), FeedOptions())
    assert "synthetic" in synthetic.command()


def test_the_api_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    settings = load_settings({"FEATURESTORE_VENDOR__API_KEY_FILE": str(key_file)})
    assert settings.vendor.key().get_secret_value() == "from-file"
    settings = load_settings({"FEATURESTORE_VENDOR__API_KEY": "from-env"})
    assert settings.vendor.key().get_secret_value() == "from-env"
    assert "from-env" not in repr(settings) and "from-env" not in str(settings.vendor)
    with pytest.raises(ConfigurationError, match="FEATURESTORE_VENDOR__API_KEY"):
        load_settings({}).vendor.key()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--symbols", "IBM"], "backfill needs --start and --end"),
        (["backfill", "--symbols", "IBM", "--start", "2013-10-07"], "give both --start and --end"),
        (
            ["backfill", "--symbols", "IBM", "--start", "yesterday", "--end", "2013-10-07"],
            "'yesterday' is neither a date",
        ),
        (
            ["backfill", "--symbols", "IBM", "--start", "2013-10-08", "--end", "2013-10-07"],
            "--end must be after --start",
        ),
        (["backfill", "--start", "2013-10-07", "--end", "2013-10-07"], "no symbols"),
        (["live", "--symbols", "IBM"], "FEATURESTORE_VENDOR__API_KEY"),
    ],
)
def test_bad_arguments_are_refused_clearly(args: list[str], message: str) -> None:
    env = {"FEATURESTORE_VENDOR__API_KEY": "", "FEATURESTORE_VENDOR__SYMBOLS": ""}
    result = CliRunner().invoke(main, ["ingest", *args], env=env)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
