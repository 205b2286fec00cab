"""The README's example: ``python clients/python/examples/quickstart.py [host:port] [SYMBOLS]``.

SYMBOLS (comma-separated) are the entities to read. The default, ``QNHI,BA``, names the two most
traded symbols of the synthetic market that ``make run`` feeds (seed 0; a test keeps them so); for
real trade files give theirs (``IBM,AIG``), for any feed see ``featurestore replay trades --limit 5
--json``.

Needs a running server (``featurestore serve``) on the local stack with data flowing
(``make run``); each part says what it needs and carries on when that is missing.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from featurestore_client import FeatureStoreClient
from featurestore_client import FeatureStoreClientError
from featurestore_client import NotFoundError


def main(target: str = "127.0.0.1:50151", symbols: str = "QNHI,BA") -> None:
    """Read features, predict, export a training set and watch anomalies for 10 seconds."""
    names = symbols.split(",")
    with FeatureStoreClient(target, timeout_s=10.0) as client:
        # 1. Online features: a value, a status and an event time per feature and entity.
        online = client.get_online_features(
            ["bars_1m:close", "rolling_1m:vwap_5m"], entities={"symbol": names}
        )
        for row in online.to_dicts(with_status=True):
            print(row)

        # 2. A prediction with the registry's "champion" model (features read online).
        try:
            scored = client.predict("featurestore-direction", entities={"symbol": names[:1]})
            print("model version", scored.model_version, "scores", scored.scores)
        except NotFoundError as exc:
            print("no model registered yet:", exc.details)

        # 3. A training set: every symbol x minute of the last hour, with 5-minute labels, of
        #    the direction model's features (rolling windows ending at each minute; bars_1m,
        #    the minute so far, is empty at a whole minute).
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        try:
            table = client.export_training_dataset(
                feature_service="direction_features_v1",
                symbols=names,
                start_time=end - timedelta(hours=1),
                end_time=end,
                step=timedelta(minutes=1),
                label_horizon=timedelta(minutes=5),
            )
            print(table.to_pandas().tail())
        except FeatureStoreClientError as exc:
            print("export failed:", exc)

        # 4. Live anomalies; the stream resumes by itself if the connection drops. Keep
        #    stream.resume_token to continue later exactly where this left off.
        with client.stream_anomalies(min_score=0.0) as stream:
            threading.Timer(10.0, stream.close).start()  # watch for 10 s at most
            for count, anomaly in enumerate(stream, 1):
                print(anomaly.symbol, anomaly.score, anomaly.event_time)
                if count == 5:
                    break
            print("resume later with", stream.resume_token)


if __name__ == "__main__":
    main(*sys.argv[1:3])
