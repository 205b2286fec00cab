"""``python -m featurestore.prediction_log TOPIC``: the prediction log's writer process."""

import sys

from featurestore.prediction_log.writer import main

main(sys.argv[1:])
