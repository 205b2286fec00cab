"""The market feed of ``make run``: trade files, the synthetic market or the vendor's live feed."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path

from typing_extensions import override

from featurestore.config import Settings
from featurestore.ingest.sources.synthetic import RARE_JUMPS
from featurestore.ingest.sources.synthetic import MarketConfig
from featurestore.stack.base import OwnProcess

__all__ = ["FeedOptions", "MarketFeed"]


@dataclass(frozen=True)
class FeedOptions:
    """What the feed sends."""

    trade_files: tuple[Path, ...] = field(default_factory=tuple)
    """Real trade files to replay; the synthetic market when empty."""
    speed: float | None = None
    """Multiple of real time for file replay (None: as fast as possible)."""
    rate: float = 200.0
    """Synthetic trades per second, all symbols together."""
    symbols: int = 20
    """Synthetic symbols."""
    seed: int = 0
    jump_probability: float = RARE_JUMPS
    """Chance that a synthetic trade carries a price jump: rare, as in the first models' demo
    market, so that what the anomaly model flags stands out (at the generator's own 1 in 2,000,
    the busiest symbol would jump about once a minute)."""
    live_symbols: tuple[str, ...] = ()
    """Symbols of the vendor's live feed (``featurestore ingest live``); wins over the others."""

    def market(self, start: datetime) -> MarketConfig:
        """The synthetic market this feed sends, drawn from ``start`` on.

        The first models' demo data is drawn from the same parameters (symbols, rate, seed,
        jumps), so that what they were trained on is what the feed sends.
        """
        return MarketConfig(
            start=start,
            symbols=self.symbols,
            rate=self.rate,
            seed=self.seed,
            jump_probability=self.jump_probability,
        )


class MarketFeed(OwnProcess):
    """``featurestore ingest files|synthetic|live`` as a managed background process.

    Healthy while the process lives or once it has ended with success: a file replay ends by
    itself when the file is sent; the synthetic market runs until ``make down``.
    """

    name = "feed"
    command_words = ("ingest",)
    start_timeout = 10.0

    def __init__(self, settings: Settings, options: FeedOptions | None = None) -> None:
        """The feed that sends what ``options`` says (default: the synthetic market)."""
        super().__init__(settings)
        self.options = options or FeedOptions()

    @override
    def address(self) -> str:
        """The trades topic it writes to, and the Kafka it reaches."""
        return f"topic {self.settings.topics.trades} on {self.settings.kafka.bootstrap}"

    @override
    def arguments(self) -> list[str]:
        """The ingest source and its options, as :attr:`options` say."""
        opts = self.options
        if opts.live_symbols:
            return ["live", "--symbols", ",".join(opts.live_symbols)]
        if opts.trade_files:
            speed = [] if opts.speed is None else ["--speed", str(opts.speed)]
            return ["files", *map(str, opts.trade_files), *speed]
        return [
            "synthetic", "--rate", str(opts.rate), "--symbols", str(opts.symbols),
            "--seed", str(opts.seed), "--jump-probability", str(opts.jump_probability),
        ]  # fmt: skip

    @override
    def launch(self) -> int:
        """Run :meth:`command` and record its exit status.

        A replay that has sent its files exits with 0: recorded, that exit keeps it healthy and
        tells the supervisor not to start it again.
        """
        return self.process.start(self.command(), env=self.child_env(), record_exit=True)

    @override
    def healthy(self) -> bool:
        """Running, or finished with success (a file replay that sent everything)."""
        return self.process.pid() is not None or self.process.exit_status() == 0
