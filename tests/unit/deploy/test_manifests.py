"""The Kubernetes manifests of deploy/k8s, rendered as Kustomize renders them and validated
offline: built-in kinds against Kubernetes' own schemas (``kubernetes-validate``, strict: an
unknown field is an error), operators' kinds against their vendored CRD schemas, the store's
configuration against its settings, and every command against the CLI."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import click
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from featurestore.cli import main as cli
from featurestore.config import load_settings
from featurestore.stack.prometheus_config import alert_rules

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
TREES = ["base", "overlays/production", "overlays/single-node"]
KUBERNETES = "1.30"
"""The oldest Kubernetes the manifests are meant for (gRPC probes are GA since 1.27)."""
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1", "Kafka"): "kafka.strimzi.io_v1_kafka.json",
    ("kafka.strimzi.io/v1", "KafkaNodePool"): "kafka.strimzi.io_v1_kafkanodepool.json",
}


def _kustomize_binary() -> str | None:
    """kustomize on the PATH, or where ``go install`` put it (deploy/bootstrap.sh)."""
    found = shutil.which("kustomize")
    if found is None and shutil.which("go") is not None:
        gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout
        built = Path(gopath.strip() or Path.home() / "go") / "bin" / "kustomize"
        found = str(built) if built.is_file() else None
    return found


def kustomize(tree: str) -> list[dict[str, Any]]:
    """The documents ``kustomize build`` makes of a tree (kustomize, or kubectl's copy of it)."""
    if (binary := _kustomize_binary()) is not None:
        command = [binary, "build", str(DEPLOY / tree)]
    elif (binary := shutil.which("kubectl")) is not None:
        command = [binary, "kustomize", str(DEPLOY / tree)]
    else:
        raise AssertionError("neither kustomize nor kubectl is installed; run `make setup`")
    rendered = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


@cache
def rendered(tree: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(tree))


def closed(schema: Any) -> Any:
    """The schema with unknown fields refused where the API server would prune them."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    path = DEPLOY / "crd-schemas" / CRD_SCHEMAS[(api_version, kind)]
    schema = closed(json.loads(path.read_text()))
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft4Validator(schema)


def name_of(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("tree", TREES)
def test_every_manifest_is_valid(tree: str) -> None:
    problems = []
    for doc in rendered(tree):
        key = (doc["apiVersion"], doc["kind"])
        if key in CRD_SCHEMAS:
            errors = crd_validator(*key).iter_errors(doc)
            problems += [
                f"{name_of(doc)}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors
            ]
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name_of(doc)}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name_of(doc)}: no schema for {key}; vendor its CRD's")
    assert problems == []


def test_an_unknown_field_is_caught() -> None:
    """The validation is strict for both kinds of schema (a misspelt field fails)."""
    grpc = next(d for d in rendered("base") if name_of(d) == "Deployment/featurestore-grpc")
    bad = json.loads(json.dumps(grpc))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES, strict=True)
    kafka = next(d for d in rendered("base") if d["kind"] == "Kafka")
    wrong = json.loads(json.dumps(kafka))
    wrong["spec"]["kafka"]["listener"] = wrong["spec"]["kafka"].pop("listeners")
    assert list(crd_validator("kafka.strimzi.io/v1", "Kafka").iter_errors(wrong))


def workloads(tree: str) -> list[dict[str, Any]]:
    kinds = {"Deployment", "StatefulSet", "Job"}
    return [d for d in rendered(tree) if d["kind"] in kinds]


def config_env(tree: str) -> dict[str, str]:
    config = next(
        d for d in rendered(tree) if d["kind"] == "ConfigMap" and "-config" in d["metadata"]["name"]
    )
    return dict(config["data"])


@pytest.mark.parametrize("tree", TREES)
def test_the_configuration_is_the_store_settings(tree: str) -> None:
    """Every variable is a setting (a misspelt one is refused) and each workload's own too."""
    env = config_env(tree)
    settings = load_settings({**env, "FEATURESTORE_POSTGRES__PASSWORD": "from-the-secret"})
    assert settings.kafka.bootstrap == "featurestore-kafka-bootstrap:9092"
    assert settings.grpc.host == "0.0.0.0" and settings.metrics.host == "0.0.0.0"
    for workload in workloads(tree):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            own = {
                e["name"]: e.get("value", "from-the-cluster")
                for e in container.get("env", [])
                if e["name"].startswith("FEATURESTORE_")
            }
            load_settings({**env, **own})


def test_the_alert_rules_are_the_stacks() -> None:
    settings = load_settings(config_env("base"))
    vendored = (DEPLOY / "base" / "prometheus" / "alerts.rules.json").read_text()
    assert json.loads(vendored) == json.loads(alert_rules(settings)), (
        "regenerate deploy/k8s/base/prometheus/alerts.rules.json from "
        "featurestore.stack.prometheus_config.alert_rules"
    )


def featurestore_commands(tree: str) -> list[list[str]]:
    commands = []
    for workload in workloads(tree):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if (
                container["image"].startswith("ghcr.io/featurestore/featurestore")
                and "args" in container
                and "command" not in container
            ):
                commands.append(list(container["args"]))
    return commands


@pytest.mark.parametrize("tree", TREES)
def test_every_command_is_one_the_cli_takes(tree: str) -> None:
    """The image's entry point is ``featurestore``: each workload's arguments must parse."""
    commands = featurestore_commands(tree)
    assert len(commands) >= 8
    for args in commands:
        command: click.Command = cli
        rest = list(args)
        while isinstance(command, click.Group):
            name = rest.pop(0)
            found = command.get_command(click.Context(command), name)
            assert found is not None, f"featurestore has no command {shlex.join(args)}"
            command = found
        command.make_context(command.name, rest)  # raises on an unknown or bad option


def test_the_registry_runs_three_instances_that_find_each_other() -> None:
    registry = next(d for d in rendered("base") if d["kind"] == "StatefulSet")
    assert registry["spec"]["replicas"] == 3
    env = {e["name"]: e for e in registry["spec"]["template"]["spec"]["containers"][0]["env"]}
    url = env["FEATURESTORE_SCHEMA_REGISTRY__ADVERTISED_URL"]["value"]
    service = registry["spec"]["serviceName"]
    assert url == f"http://$(POD_NAME).{service}:8081"
    headless = next(d for d in rendered("base") if name_of(d) == f"Service/{service}")
    assert headless["spec"]["clusterIP"] == "None"


def pod_specs(tree: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload, pod labels, pod spec) of every workload."""
    return [
        (
            name_of(w),
            w["spec"]["template"]["metadata"].get("labels", {}),
            w["spec"]["template"]["spec"],
        )
        for w in workloads(tree)
    ]


@pytest.mark.parametrize("tree", TREES)
def test_every_reference_names_something_of_the_tree(tree: str) -> None:
    """Selectors select pods, and what pods mount, read or scale exists (but the Secret,
    which is made by hand: deploy/README.md)."""
    docs = rendered(tree)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    pods = pod_specs(tree)
    missing = []
    for doc in docs:
        selector = None
        if doc["kind"] == "Service" and doc["spec"].get("type") != "ExternalName":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        if selector is not None and not any(
            selector.items() <= labels.items() for _, labels, _ in pods
        ):
            missing.append(f"{name_of(doc)} selects no pod")
        if doc["kind"] == "HorizontalPodAutoscaler":
            target = doc["spec"]["scaleTargetRef"]
            if (target["kind"], target["name"]) not in names:
                missing.append(f"{name_of(doc)} scales {target['name']}, which is not here")
        if doc["kind"] == "StatefulSet" and ("Service", doc["spec"]["serviceName"]) not in names:
            missing.append(f"{name_of(doc)}: no Service {doc['spec']['serviceName']}")
    for workload, _, spec in pods:
        for volume in spec.get("volumes", []):
            if "configMap" in volume and ("ConfigMap", volume["configMap"]["name"]) not in names:
                missing.append(f"{workload}: no ConfigMap {volume['configMap']['name']}")
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and ("PersistentVolumeClaim", claim) not in names:
                missing.append(f"{workload}: no PersistentVolumeClaim {claim}")
        if (
            "serviceAccountName" in spec
            and ("ServiceAccount", spec["serviceAccountName"]) not in names
        ):
            missing.append(f"{workload}: no ServiceAccount {spec['serviceAccountName']}")
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                ref = source["configMapRef"]["name"]
                if ("ConfigMap", ref) not in names:
                    missing.append(f"{workload}: no ConfigMap {ref}")
            for env in container.get("env", []):
                secret = env.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
                if secret is not None and secret != "featurestore-secrets":
                    missing.append(f"{workload}: Secret {secret} is not the documented one")
    assert missing == []
