"""The Feast objects of the store, for Feast's own CLI (``feast apply`` in this folder).

They are built from the canonical catalog, ``featurestore.definitions.catalog``, so that
``feast apply`` here and ``featurestore registry apply`` register exactly the same objects.
"""

from __future__ import annotations

from featurestore.definitions.catalog import market_definitions
from featurestore.definitions.feast_codec import to_feast_objects

_objects = {obj.name: obj for obj in to_feast_objects(market_definitions())}

symbol = _objects["symbol"]
bars_1m = _objects["bars_1m"]
rolling_1m = _objects["rolling_1m"]
market_features_v1 = _objects["market_features_v1"]
anomaly_features_v1 = _objects["anomaly_features_v1"]
direction_features_v1 = _objects["direction_features_v1"]
