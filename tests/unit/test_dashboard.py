from __future__ import annotations

from typing import Any

from featurestore.config import load_settings
from featurestore.dashboard import Dashboard
from featurestore.dashboard._app import _page


def test_a_failing_panel_shows_its_error_and_the_others_still_fill() -> None:
    def broken(_: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("prometheus is away")

    board = Dashboard(
        load_settings({}),
        {"market": lambda _: {"symbols": ["A"]}, "pipeline": broken,
         "models": lambda s: {"seen": s["market"]["symbols"]}},
    )  # fmt: skip
    snapshot = board.gather_once()
    assert snapshot["market"]["symbols"] == ["A"]
    assert snapshot["pipeline"]["error"] == "ConnectionError: prometheus is away"
    assert snapshot["models"]["seen"] == ["A"]  # later panels see earlier ones
    assert snapshot["generated_at"]


def test_the_page_polls_at_the_configured_refresh() -> None:
    page = _page(2.5)
    assert "const REFRESH_MS = 2500;" in page
    assert "/*SCRIPT*/" not in page and "/*STYLE*/" not in page
    assert 'fetch("/api/snapshot"' in page
    for panel in ("market", "models", "pipeline"):
        assert f'<section id="{panel}"' in page


def test_dashboard_settings_from_env() -> None:
    settings = load_settings(
        {"FEATURESTORE_DASHBOARD__PORT": "18111", "FEATURESTORE_DASHBOARD__MODELS": "a, b"}
    ).dashboard
    assert settings.url == "http://127.0.0.1:18111/"
    assert settings.models == ("a", "b")
    assert load_settings({}).dashboard.refresh_s <= 5
