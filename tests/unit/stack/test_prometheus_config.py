from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.stack.prometheus_config import (
    ALERTS,
    alert_rules,
    scrape_config,
    stack_targets,
    write_stack_targets,
)


def _settings(**env: str):
    return load_settings({f"FEATURESTORE_{k.upper()}": v for k, v in env.items()})


def test_the_stack_s_wanted_processes_are_targets_on_their_configured_ports(
    tmp_path: Path,
) -> None:
    settings = _settings(metrics__grpc_port="20001", metrics__processors_port="20010")
    everything = stack_targets(settings)
    assert {job for job, _, _ in everything.values()} == {
        "grpc", "processors", "ingest", "scorer", "schema-registry", "monitor"
    }  # fmt: skip
    folder = tmp_path / "targets"
    path = write_stack_targets(settings, list(everything), folder)
    listed = {
        (e["labels"]["job"], target, e["labels"].get("processor"))
        for e in json.loads(path.read_text())
        for target in e["targets"]
    }
    assert ("grpc", "127.0.0.1:20001", None) in listed
    assert {("processors", f"127.0.0.1:{20010 + i}", name) for i, name in
            enumerate(["features", "features-quotes", "features-metrics"])} <= listed  # fmt: skip
    # Only what is wanted: a stack up without its services, then the gRPC server stopped.
    write_stack_targets(settings, ["schema-registry", "grpc", "postgres"], folder)
    assert [e["labels"]["component"] for e in json.loads(path.read_text())] == [
        "grpc", "schema-registry"
    ]  # fmt: skip
    write_stack_targets(settings, ["schema-registry"], folder)
    assert [e["labels"]["job"] for e in json.loads(path.read_text())] == ["schema-registry"]
    config = json.loads(scrape_config(settings, tmp_path / "rules.yml", folder))
    assert [j["job_name"] for j in config["scrape_configs"]] == ["prometheus", "discovered"]
    discovered = config["scrape_configs"][1]
    assert discovered["file_sd_configs"][0]["files"] == [str(folder / "*.json")]
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


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_prediction_log_loss_fires_on_dropped_or_failed_rows_only(tmp_path: Path) -> None:
    """promtool evaluates the generated rule over series: sent rows alone never fire it."""
    settings = _settings(prometheus__alert_for_s="0", prometheus__rate_window_s="120")
    rules = tmp_path / "rules.yml"
    rules.write_text(alert_rules(settings))
    metric = "featurestore_prediction_log_records_total"
    series = [
        {"series": f'{metric}{{instance="a:1", outcome="sent"}}', "values": "0+600x10"},
        {"series": f'{metric}{{instance="a:1", outcome="dropped"}}', "values": "0x4 0+100x5"},
        {"series": f'{metric}{{instance="b:1", outcome="sent"}}', "values": "0+600x10"},
        {"series": f'{metric}{{instance="b:1", outcome="dropped"}}', "values": "0x10"},
        {"series": f'{metric}{{instance="b:1", outcome="failed"}}', "values": "0x10"},
    ]
    firing_a = [
        {
            "exp_labels": {"instance": "a:1", "severity": "critical"},
            # 100 rows a minute over the 2-minute window
            "exp_annotations": {
                "summary": "a:1: 200 Predict rows not written to the prediction log"
            },
        }
    ]
    cases = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "PredictionLogLoss", "exp_alerts": []},
                    {"eval_time": "8m", "alertname": "PredictionLogLoss", "exp_alerts": firing_a},
                ],
            }
        ],
    }
    path = tmp_path / "cases.yml"
    path.write_text(json.dumps(cases))
    done = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
