from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.stack.prometheus_config import ALERTS, alert_rules, scrape_config


def _settings(**env: str):
    return load_settings({f"FEATURESTORE_{k.upper()}": v for k, v in env.items()})


def test_every_process_of_the_stack_is_a_target_on_its_configured_port(tmp_path: Path) -> None:
    settings = _settings(metrics__grpc_port="20001", metrics__processors_port="20010")
    config = json.loads(scrape_config(settings, tmp_path / "rules.yml", tmp_path / "targets"))
    targets = {
        (job["job_name"], target, static.get("labels", {}).get("processor"))
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert ("grpc", "127.0.0.1:20001", None) in targets
    assert {("processors", f"127.0.0.1:{20010 + i}", name) for i, name in
            enumerate(["features", "features-quotes", "features-metrics"])} <= targets  # fmt: skip
    assert {job for job, _, _ in targets} == {
        "prometheus", "grpc", "processors", "ingest", "scorer", "schema-registry", "monitor"
    }  # fmt: skip
    discovered = [j for j in config["scrape_configs"] if j["job_name"] == "discovered"]
    assert discovered[0]["file_sd_configs"][0]["files"] == [str(tmp_path / "targets" / "*.json")]
    assert config["rule_files"] == [str(tmp_path / "rules.yml")]


def test_rule_thresholds_and_windows_come_from_the_settings() -> None:
    settings = _settings(
        prometheus__lag_alert_s="7", prometheus__alert_for_s="2.5", prometheus__rate_window_s="30"
    )
    rules = json.loads(alert_rules(settings))["groups"][0]["rules"]
    by_name = {r["alert"]: r for r in rules}
    assert tuple(by_name) == ALERTS
    assert by_name["ConsumerLagHigh"]["expr"].endswith("> 7")
    assert all(r["for"] == "2500ms" for r in rules)
    assert "[30000ms]" in by_name["FreshnessSlow"]["expr"]
    assert by_name["DriftHigh"]["expr"].endswith("> 0.2")
    assert by_name["FreshnessSlow"]["expr"].endswith("> 1")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_generated_config_and_rules(tmp_path: Path) -> None:
    settings = _settings(prometheus__alert_for_s="0")
    rules = tmp_path / "rules.yml"
    rules.write_text(alert_rules(settings))
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape_config(settings, rules, tmp_path))
    for what, path in (("rules", rules), ("config", config)):
        done = subprocess.run(
            ["promtool", "check", what, str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
