"""One gRPC server process of the balancing test (``python -m`` this module PROJECT).

The market catalog under PROJECT over the stack's backends; host, port and metrics port from
``FEATURESTORE_*`` like any server of the store. SIGTERM drains it as in production.
"""

from __future__ import annotations

import sys

from featurestore.config import load_settings
from featurestore.online.testing import market_catalog
from featurestore.service.server import run_server
from featurestore.telemetry import log_to_stderr

if __name__ == "__main__":
    log_to_stderr()
    run_server(load_settings(), market_catalog(sys.argv[1]))
