"""A StreamAnomalies client run as its own process, so that a test can kill it with SIGKILL.

``python -m tests.integration.service.anomaly_client TARGET START`` where START is ``time:ISO``
or ``token:TOKEN``; prints one JSON line per anomaly (id and resume token), flushed at once.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from featurestore_client import FeatureStoreClient


def main(target: str, start: str, symbols: str, min_score: float) -> None:
    kind, _, value = start.partition(":")
    with FeatureStoreClient(target) as client:
        stream = client.stream_anomalies(
            symbols=symbols.split(","),
            min_score=min_score,
            start_time=datetime.fromisoformat(value) if kind == "time" else None,
            resume_token=value if kind == "token" else None,
        )
        for anomaly in stream:
            print(json.dumps({"id": anomaly.anomaly_id, "token": anomaly.resume_token}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
