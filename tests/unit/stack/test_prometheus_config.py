from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.stack.prometheus_config import ALERTS
from featurestore.stack.prometheus_config import DESCRIPTIONS
from featurestore.stack.prometheus_config import alert_rules
from featurestore.stack.prometheus_config import scrape_config
from featurestore.stack.prometheus_config import stack_targets
from featurestore.stack.prometheus_config import write_stack_targets


def _settings(**env: str) -> Settings:
    return load_settings({f"FEATURESTORE_{k.upper()}": v for k, v in env.items()})


def test_the_stack_s_wanted_processes_are_targets_on_their_configured_ports(
    tmp_path: Path,
) -> None:
    settings = _settings(metrics__grpc_port="20001", metrics__processors_port="20010")
    everything = stack_targets(settings)
    assert {job for job, _, _ in everything.values()} == {
        "grpc", "processors", "ingest", "scorer", "schema-registry", "monitor", "predictor"
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
                "summary": "a:1: 200 Predict rows not written to the prediction log",
                "description": DESCRIPTIONS["PredictionLogLoss"],
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


def _promtool_test(tmp_path: Path, settings: Settings, series: list[dict[str, str]],
                   checks: list[dict[str, Any]]) -> None:  # fmt: skip
    rules = tmp_path / "rules.yml"
    rules.write_text(alert_rules(settings))
    cases = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = tmp_path / "cases.yml"
    path.write_text(json.dumps(cases))
    done = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_rpc_errors_fire_only_for_a_method_called_often_enough(tmp_path: Path) -> None:
    """One failed call of a method called once is not a failing service; 20% of 60 calls is."""
    settings = _settings(prometheus__alert_for_s="0", prometheus__rate_window_s="120")
    count = "featurestore_grpc_server_handling_seconds_count"
    labels = 'grpc_service="featurestore.v1.{}", grpc_method="{}", grpc_code="{}"'

    def series(service: str, method: str, code: str, values: str) -> dict[str, str]:
        return {
            "series": count + "{" + labels.format(service, method, code) + "}",
            "values": values,
        }

    rare, busy = (
        ("DatasetService", "ExportTrainingDataset"),
        ("FeatureService", "GetOnlineFeatures"),
    )
    input_series = [
        # The server exports every method's OK and server-error series from its start, at 0.
        series(*rare, "OK", "0x10"),
        series(*rare, "UNAVAILABLE", "0x4 1x5"),  # one failed call, its only call
        series(*busy, "OK", "0+24x10"),
        series(*busy, "UNAVAILABLE", "0+6x10"),  # 20% of 30 calls a minute
    ]
    firing = [
        {
            "exp_labels": {"grpc_service": "featurestore.v1.FeatureService",
                           "grpc_method": "GetOnlineFeatures", "severity": "critical"},
            "exp_annotations": {"summary": "GetOnlineFeatures: 20% of calls end in a server error",
                                "description": DESCRIPTIONS["RpcErrorsHigh"]},
        }
    ]  # fmt: skip
    _promtool_test(
        tmp_path,
        settings,
        input_series,
        [{"eval_time": "6m", "alertname": "RpcErrorsHigh", "exp_alerts": firing}],
    )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_component_down_names_a_processor_or_a_pod(tmp_path: Path) -> None:
    settings = _settings(prometheus__alert_for_s="0")
    input_series = [
        {"series": 'up{job="processor", processor="trades", instance="127.0.0.1:19465"}',
         "values": "0x5"},
        {"series": 'up{job="grpc", pod="grpc-7d9f", instance="10.1.2.3:9464"}', "values": "0x5"},
    ]  # fmt: skip
    description = DESCRIPTIONS["ComponentDown"]
    firing = [
        {
            "exp_labels": {"job": "processor", "processor": "trades",
                           "instance": "127.0.0.1:19465", "severity": "critical"},
            "exp_annotations": {"summary": "processor trades at 127.0.0.1:19465 does not answer"
                                " its scrape", "description": description},
        },
        {
            "exp_labels": {"job": "grpc", "pod": "grpc-7d9f", "instance": "10.1.2.3:9464",
                           "severity": "critical"},
            "exp_annotations": {"summary": "grpc (grpc-7d9f) at 10.1.2.3:9464 does not answer its"
                                " scrape", "description": description},
        },
    ]  # fmt: skip
    _promtool_test(
        tmp_path,
        settings,
        input_series,
        [{"eval_time": "3m", "alertname": "ComponentDown", "exp_alerts": firing}],
    )


def test_a_rate_window_shorter_than_two_scrapes_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="RATE_WINDOW_S=9 is shorter than two scrape"):
        _settings(prometheus__rate_window_s="9", prometheus__scrape_interval_s="5")
