"""The gRPC service: servicers, method wrappers (telemetry, auth, errors) and the server factory."""

from featurestore.config import ServiceSettings
from featurestore.service.server import SERVICE_NAMES
from featurestore.service.server import ServiceServer
from featurestore.service.server import create_server
from featurestore.service.server import new_event_loop
from featurestore.service.server import run_server
from featurestore.service.server import serve
from featurestore.service.telemetry import Telemetry

__all__ = [
    "SERVICE_NAMES",
    "ServiceServer",
    "ServiceSettings",
    "Telemetry",
    "create_server",
    "new_event_loop",
    "run_server",
    "serve",
]
