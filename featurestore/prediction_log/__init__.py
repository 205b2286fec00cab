"""The prediction log: every prediction Predict serves, as a PredictionLog event in Kafka.

Its own package, light to import, because it runs in a process of its own beside the gRPC server
(``python -m featurestore.prediction_log TOPIC``, :mod:`.writer`): the server hands it each call
in a few bytes (:mod:`featurestore.service.prediction_log_process`), and it encodes the records
column-wise (:mod:`.encoding`) and produces them (:mod:`.logger`).
"""

from featurestore.prediction_log.encoding import PredictionLogEncoder
from featurestore.prediction_log.encoding import PredictionRows
from featurestore.prediction_log.logger import PredictionLogger
from featurestore.prediction_log.logger import entity_key
from featurestore.prediction_log.logger import prediction_key

__all__ = [
    "PredictionLogEncoder",
    "PredictionLogger",
    "PredictionRows",
    "entity_key",
    "prediction_key",
]
