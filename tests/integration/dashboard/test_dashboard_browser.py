"""The dashboard in a real browser (headless Chromium) against live processes of this run.

As child processes on free ports and names unique to the run: a synthetic feed, a processor of
its own project, the lag monitor, a gRPC server (its own anomalies topic) and the dashboard,
which reads them through the gRPC API, the offline store, the stack's MLflow and the stack's
Prometheus (which finds the children's metrics through their target files). The test registers a
champion model and produces two anomalies for a symbol of the run; the page must show all of it
without being reloaded. Screenshots go to ``build/test-artifacts/dashboard/``
(``FEATURESTORE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.stack.process import wait_until
from tests.browser import Page
from tests.browser import chromium_page
from tests.conftest import REPO_ROOT
from tests.e2e.processors_support import clean_up
from tests.integration.children import Children
from tests.integration.children import child_env
from tests.integration.service.anomaly_data import AnomalyProducer
from tests.integration.service.anomaly_data import anomaly_record
from tests.integration.service.anomaly_data import create_topic
from tests.integration.service.mlflow_models import delete_model
from tests.integration.service.mlflow_models import register_models
from tests.live import topic_has_schema
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(480)]

ARTIFACTS = Path(
    os.environ.get("FEATURESTORE_TEST_ARTIFACTS", REPO_ROOT / "build" / "test-artifacts")
)


@dataclass
class Run:
    run: str
    processor: str
    model: str
    url: str
    children: Children
    anomalous: str = ""
    """The symbol given two anomalies."""

    def snapshot(self) -> dict[str, Any]:
        try:
            reply = requests.get(self.url + "api/snapshot", timeout=5)
        except requests.RequestException:
            return {}
        return dict(reply.json()) if reply.ok else {}


@pytest.fixture(scope="module")
def live(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    run = uuid.uuid4().hex[:8]
    topic, anomalies = f"dash-trades-{run}", f"dash-anomalies-{run}"
    definitions: Definitions = market_definitions(
        f"dash_{run}", table_prefix=f"dash_{run}_", source_topic=topic, ttl=timedelta(0)
    )
    dashboard_port, grpc_port = free_port(), free_port()
    processor, model = f"dash-{run}", f"fs-dash-{run}"
    env = child_env(
        stack,
        FEATURESTORE_METRICS__LAG_PROCESSORS=processor,
        FEATURESTORE_METRICS__LAG_INTERVAL_S="1",
        FEATURESTORE_METRICS__DRIFT_INTERVAL_S="3600",
        FEATURESTORE_TOPICS__ANOMALIES=anomalies,
        FEATURESTORE_DASHBOARD__MODELS=model,
        FEATURESTORE_DASHBOARD__OUTCOME_HORIZON_S="6",
        FEATURESTORE_DASHBOARD__HISTORY_MINUTES="10",
        FEATURESTORE_DASHBOARD__REFRESH_S="1",
    )
    children = Children(env, tmp_path_factory.mktemp("dashboard-run"))
    r = Run(run, processor, model, f"http://127.0.0.1:{dashboard_port}/", children)
    registered = threading.Thread(target=register_models, args=(stack, r.model))
    try:
        registered.start()
        create_topic(stack, anomalies)
        children.cli("feed", "ingest", "synthetic", "--topic", topic, "--symbols", "4",
                     "--rate", "40")  # fmt: skip
        assert wait_until(lambda: topic_has_schema(stack, topic), 60), children.log_tail()
        apply_definitions(stack, definitions)
        children.cli("processor", "processors", "run", "--name", r.processor, "--project",
                     definitions.project, "--topic", topic, "--metrics-port", "0")  # fmt: skip
        children.cli("monitor", "monitor", "--metrics-port", "0")
        children.cli("grpc", "serve", "--port", str(grpc_port), "--project", definitions.project)
        registered.join(120)
        children.cli("dashboard", "dashboard", "--port", str(dashboard_port), "--grpc-target",
                     f"127.0.0.1:{grpc_port}", "--project", definitions.project)  # fmt: skip
        symbols: list[str] = []

        def trading() -> bool:
            symbols[:] = r.snapshot().get("market", {}).get("symbols", [])
            return bool(symbols)

        assert wait_until(trading, 240, 1.0), f"{r.snapshot()}\n{children.log_tail()}"
        producer = AnomalyProducer(stack, anomalies)
        now = datetime.now(UTC)
        r.anomalous = symbols[0]
        for i in (1, 2):
            record = anomaly_record(i, r.anomalous, 0.9)
            record["event_time"] = now - timedelta(seconds=10 * i)
            record["detected_at"] = now
            producer.send(record)
        producer.close()
        yield r
    finally:
        children.stop_all()
        registered.join(120)
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM processor_view_state WHERE processor = %s", (r.processor,))
        clean_up(stack, [definitions], f"dash-{run}*", [topic, anomalies])
        delete_model(stack, r.model)


def _text(page: Page, selector: str) -> str:
    return str(page.evaluate(f"document.querySelector({selector!r}).innerText"))


def _count(page: Page, selector: str) -> int:
    return int(page.evaluate(f"document.querySelectorAll({selector!r}).length"))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # the page's placeholder for no value


def _select(page: Page, symbol: str) -> None:
    """Show ``symbol``'s candles: the page shows the first symbol until another is chosen."""
    page.evaluate(
        f"""(() => {{
            const chip = [...document.querySelectorAll('#symbols button')]
                .find(b => b.innerText === {symbol!r});
            if (chip && !chip.classList.contains('on')) chip.click();
        }})()"""
    )


def _row_value(page: Page, table: str, name: str) -> float:
    """The last cell of the row of ``table`` whose first cell is ``name`` (NaN if none)."""
    value = page.evaluate(
        f"""(() => {{
            const row = [...document.querySelectorAll('#{table} tr')]
                .find(r => r.cells[0] && r.cells[0].innerText === {name!r});
            return row ? row.cells[row.cells.length - 1].innerText : 'nan';
        }})()"""
    )
    return _number(str(value))


def test_every_panel_shows_this_runs_data_and_refreshes_in_place(live: Run, tmp_path: Path) -> None:
    ARTIFACTS.joinpath("dashboard").mkdir(parents=True, exist_ok=True)
    symbols = live.snapshot()["market"]["symbols"]
    checks: dict[str, bool] = {}
    with chromium_page(live.url, tmp_path / "profile") as page:
        drawn = "!!(document.body && document.body.dataset.generatedAt)"
        assert wait_until(lambda: page.evaluate(drawn), 30)
        page.evaluate("window.__sameDocument = true")
        first = page.evaluate("document.body.dataset.generatedAt")
        page.screenshot(ARTIFACTS / "dashboard" / "first-data.png")

        def filled() -> bool:
            _select(page, live.anomalous)
            checks.update(
                {
                    "symbols": all(s in _text(page, "#symbols") for s in symbols),
                    "candles": _count(page, "#candles .candle") > 0,
                    "anomalies": _count(page, "#candles .anomaly") >= 2,
                    "latest": all(s in _text(page, "#latest") for s in symbols),
                    "champion": f"{live.model}\tv1" in _text(page, "#champions"),
                    "predictions": any(s in _text(page, "#predictions") for s in symbols)
                    and "%" in _text(page, "#predictions"),
                    "processed": _row_value(page, "processed", live.processor) > 0,
                    "ingested": _number(_text(page, "#ingested-now")) > 0,
                    "lag": live.processor in _text(page, "#lag"),
                    "freshness": _row_value(page, "freshness", live.processor) >= 0,
                    "rpcs": "GetOnlineFeatures" in _text(page, "#rpcs"),
                    # the dashboard's own Predict calls, each row logged
                    "prediction log": _row_value(page, "prediction-log", "sent") > 0,
                }
            )  # fmt: skip
            return all(checks.values())

        ok = wait_until(filled, 120, 1.0)
        page.screenshot(ARTIFACTS / "dashboard" / "dashboard.png")
        market = live.snapshot().get("market", {})
        shown = {k: market.get(k) for k in ("symbols", "anomalies", "anomaly_stream_error")}
        models = live.snapshot().get("models", {})
        predicted = {k: models.get(k) for k in ("error", "champions")}
        predicted["predictions"] = (models.get("predictions") or [])[:15]
        assert ok, (
            f"not shown: {[k for k, v in checks.items() if not v]}\nmarket: {shown}\n"
            f"models: {predicted}\n"
            f"{live.children.log_tail()}"
        )
        # Refreshed in place: newer data, same document (no reload). The panels may all fill from
        # the first snapshot, so wait for the next one rather than expect it already drawn.
        newer = f"document.body.dataset.generatedAt !== {first!r}"
        assert wait_until(lambda: page.evaluate(newer), 30), "the page was not redrawn in 30 s"
        assert page.evaluate("window.__sameDocument === true")
        assert page.evaluate("document.querySelector('#models .error').innerText") == ""
        # RPC errors: the codes that occurred, not every (method, code) series the server
        # exports from its start at 0
        rates = page.evaluate(
            "[...document.querySelectorAll('#rpc-errors tr')].slice(1)"
            ".map(r => r.cells[r.cells.length - 1].innerText)"
        )
        assert rates == ["none"] or all(_number(rate) > 0 for rate in rates), rates
