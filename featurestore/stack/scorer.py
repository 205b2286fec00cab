"""The anomaly scorer of ``make run``: ``featurestore score --follow`` in the background."""

from __future__ import annotations

from typing_extensions import override

from featurestore.stack.base import ReadyFileComponent

__all__ = ["SCORED_VIEWS", "AnomalyScorerService"]

SCORED_VIEWS: dict[str, tuple[str, ...]] = {
    "rolling_1m": (),
    "metric_rolling_1m": ("value_mean_1m",),
}
"""The views ``make run`` scores, each with the features a first detector of it watches
(``rolling_1m``'s first model is the IsolationForest ``make run`` trains on demo data)."""


class AnomalyScorerService(ReadyFileComponent):
    """Scores new rows of :data:`SCORED_VIEWS` with each view's champion anomaly model.

    Healthy once the scorer has loaded its models and says so in its ready file. rolling_1m
    needs a ``champion`` (``make run`` trains first models before it starts the services); a
    view whose model has none gets a streaming detector fitted on its rows at start.
    """

    name = "scorer"
    command_words = ("score",)
    start_timeout = 120.0

    @override
    def address(self) -> str:
        """The views it scores and the topic its anomalies go to."""
        return f"{', '.join(SCORED_VIEWS)} -> topic {self.settings.topics.anomalies}"

    @override
    def arguments(self) -> list[str]:
        """``--follow`` on :data:`SCORED_VIEWS`.

        With ``--register-missing``: a view whose model has no champion gets a streaming detector
        fitted and registered at start.
        """
        arguments = ["--follow"]
        for view, features in SCORED_VIEWS.items():
            arguments += ["--view", view]
            if features:
                arguments += ["--feature", f"{view}={','.join(features)}"]
        return [*arguments, "--register-missing"]
