"""The online store: the latest feature row of every entity, in Feast's Redis layout.

Everything about Redis lives here, one Redis server or a Redis Cluster alike:

- ``base.py``: the store's interface and domain types; ``catalog.py``: what views hold;
- ``layout.py``: Feast's keys and fields, byte for byte;
- ``redis.py``: :class:`RedisOnlineStore` (reads, and write-if-newer writes through redis-py) and
  the blocking :class:`RedisOnlineWriter` the processors use;
- ``rows.py``: the read path below decoding (prebuilt HMGET batches, the row cache in front);
  ``pipelined.py``: its one shared connection per server; ``cluster.py``: its routing by slot;
- ``reading.py``: decoding replies into statuses and values; ``row_cache.py``: the cache.
"""

from featurestore.online import base
from featurestore.online.base import *  # noqa: F403  (the interface and domain types: base.__all__)
from featurestore.online.catalog import StaticCatalog
from featurestore.online.catalog import catalog_from_feast
from featurestore.online.catalog import catalog_from_feast_repo
from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis import RedisOnlineWriter

__all__ = [
    "RedisOnlineStore",
    "RedisOnlineWriter",
    "StaticCatalog",
    "catalog_from_feast",
    "catalog_from_feast_repo",
    *base.__all__,
]
