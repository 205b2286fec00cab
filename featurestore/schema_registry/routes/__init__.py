"""The registry's REST routes, one module per part of Confluent's API.

Routes only translate: query strings and JSON bodies in, the registry's answers out
(:mod:`._http` has the shared parsing and the error bodies). :mod:`.placement` decides where
each is served among several instances: a read behind this instance's read barrier, a write
here when it leads or forwarded to the leader.
"""

from featurestore.schema_registry.routes._http import CONTENT_TYPE
from featurestore.schema_registry.routes._http import http_error
from featurestore.schema_registry.routes.config import ConfigRoutes
from featurestore.schema_registry.routes.placement import Node
from featurestore.schema_registry.routes.placement import Placement
from featurestore.schema_registry.routes.schemas import SchemaRoutes
from featurestore.schema_registry.routes.service import ServiceRoutes
from featurestore.schema_registry.routes.subjects import SubjectRoutes

__all__ = [
    "CONTENT_TYPE",
    "ConfigRoutes",
    "Node",
    "Placement",
    "SchemaRoutes",
    "ServiceRoutes",
    "SubjectRoutes",
    "http_error",
]
