"""Predict latency next to GetOnlineFeatures of the same entities and features, same server.

A scikit-learn pipeline (imputer + linear regression) over the 10 features of the online bench is
registered in the running MLflow under a name of this run's own (deleted afterwards); its alias
"champion" is resolved by the server (5 s TTL) and the model is cached by version, so the figures
are the steady state: one Redis round trip, scoring, one PredictionLog per row queued for Kafka
(a topic of this run's own). Both RPCs are called through the same raw-bytes client.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import Any

import grpc
import numpy as np
import pandas as pd
import redis

from bench.bench_online import (
    FEATURES,
    METHOD,
    SERIAL_S,
    SYMBOLS,
    _measure,
    _request,
    _start_child,
    _write_rows,
)
from bench.stats import markdown_table, percentiles_ms
from featurestore.config import Settings, TopicSettings
from featurestore.topics import TopicSpec, ensure_topics

PREDICT = "/featurestore.v1.PredictionService/Predict"


def _register(settings: Settings, name: str) -> None:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    columns = [f.replace(":", "__") for f in FEATURES]
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(0, 1, (500, len(columns))), columns=columns)
    y = x.sum(axis=1)
    model = make_pipeline(SimpleImputer(strategy="constant", fill_value=0.0), LinearRegression())
    model.fit(x, y)
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_experiment(f"bench-{name}")
    with mlflow.start_run(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, model.predict(x)),
            registered_model_name=name,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")


def _predict_request(name: str, n: int) -> bytes:
    from featurestore._proto.v1 import prediction_service_pb2, types_pb2

    message = prediction_service_pb2.PredictRequest(model_name=name, alias="champion")
    message.entities["symbol"].values.extend(types_pb2.Value(string_value=s) for s in SYMBOLS[:n])
    return message.SerializeToString()


def run(settings: Settings) -> str:
    from confluent_kafka.admin import AdminClient

    run_id = uuid.uuid4().hex[:8]
    project, model, topic = (
        f"bench_{run_id}",
        f"bench-model-{run_id}",
        f"bench-predictions-{run_id}",
    )
    admin = AdminClient(settings.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(topic, 1)])
    asyncio.run(_write_rows(settings, project))
    _register(settings, model)
    child = None
    rows: list[list[object]] = []
    try:
        child, port = _start_child(
            "serve-features",
            settings.model_copy(update={"topics": TopicSettings(predictions=topic)}),
            project,
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            calls: dict[str, Any] = {
                "Predict": channel.unary_unary(PREDICT),
                "GetOnlineFeatures": channel.unary_unary(METHOD),
            }
            calls["Predict"](_predict_request(model, 1), timeout=60)  # loads the model
            results = {}
            for n in (1, 100):
                for what, call in calls.items():
                    payload = _predict_request(model, n) if what == "Predict" else _request(n)

                    def once(c: Any = call, p: bytes = payload) -> object:
                        return c(p, timeout=10)

                    lat, qps = _measure(once, SERIAL_S, 1)
                    results[(what, n)] = (percentiles_ms(lat), qps)
        for (what, n), (pct, qps) in results.items():
            base = results[("GetOnlineFeatures", n)][0]
            rows.append(
                [what, f"{n} x 10", pct["p50"], pct["p99"], qps, f"{pct['p50'] / base['p50']:.2f}x"]
            )
    finally:
        if child is not None:
            child.terminate()
            child.wait(15)
        import mlflow

        mlflow.MlflowClient(settings.mlflow.tracking_uri).delete_registered_model(model)
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result(30)
        client = redis.Redis(
            host=settings.redis.host, port=settings.redis.port, **settings.redis.client_kwargs()
        )
        with client:
            keys = [k for k in client.scan_iter(count=1000) if k.endswith(project.encode())]
            if keys:
                client.delete(*keys)
    return "\n\n".join(
        [
            "## Predict",
            __doc__.strip().split("\n\n")[1].replace("\n", " "),
            markdown_table(
                [
                    "RPC",
                    "entities x features",
                    "p50 ms",
                    "p99 ms",
                    "QPS (1 in flight)",
                    "p50 / GetOnlineFeatures p50",
                ],
                rows,
            ),
        ]
    )


if __name__ == "__main__":
    from featurestore.config import load_settings

    print(run(load_settings()))
