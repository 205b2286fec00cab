"""The prediction feed of ``make run``: ``featurestore predict --follow --record``."""

from __future__ import annotations

from typing_extensions import override

from featurestore.stack.base import ReadyFileComponent

__all__ = ["FEED_MODELS", "PredictionFeedService"]

FEED_MODELS = ("featurestore-direction",)
"""The champions the stack's feed predicts with: the first models ``make run`` trains that
predict from market features (the anomaly model has the scorer; regime's classes are no return
forecast)."""


class PredictionFeedService(ReadyFileComponent):
    """Live predictions of the champion(s) into the predictions topic, and the predictions table.

    One process, two loops: the feed (new rolling_1m rows -> PredictionLog events, which
    StreamPredictions serves) and the recorder (the predictions topic -> the offline
    ``predictions`` table, Predict's predictions included). Healthy once both run and say so in
    the ready file; it needs the champions (``make run`` trains first models before it starts
    the services).
    """

    name = "predictor"
    command_words = ("predict",)
    start_timeout = 120.0

    @override
    def address(self) -> str:
        """What flows through it: rolling_1m rows, the predictions topic, the table."""
        return f"rolling_1m -> topic {self.settings.topics.predictions} -> table predictions"

    @override
    def arguments(self) -> list[str]:
        """``--follow --record`` with the models of :data:`FEED_MODELS`."""
        return ["--follow", "--record", *(a for m in FEED_MODELS for a in ("--model", m))]
