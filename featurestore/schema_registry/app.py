"""The Confluent Schema Registry REST API over a :class:`SchemaRegistry`: the application.

The routes live in :mod:`featurestore.schema_registry.routes`, one module per part of the API;
this assembles them, with Confluent's error bodies for Starlette's own errors and HTTP basic
auth when users are configured. Among several instances (:mod:`..cluster`) a read first passes
the instance's read barrier, and a write is forwarded to the leader unless this instance leads.
``GET /health`` says whether the instance serves and, if not, why (503 then).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from featurestore.schema_registry.auth import BasicAuth
from featurestore.schema_registry.cluster import StandaloneNode
from featurestore.schema_registry.registry import SchemaRegistry
from featurestore.schema_registry.routes import CONTENT_TYPE
from featurestore.schema_registry.routes import ConfigRoutes
from featurestore.schema_registry.routes import Node
from featurestore.schema_registry.routes import Placement
from featurestore.schema_registry.routes import SchemaRoutes
from featurestore.schema_registry.routes import ServiceRoutes
from featurestore.schema_registry.routes import SubjectRoutes
from featurestore.schema_registry.routes import http_error

__all__ = ["CONTENT_TYPE", "Node", "build_app"]


def build_app(
    registry: SchemaRegistry,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    node: Node | None = None,
    users: Mapping[str, SecretStr] | None = None,
) -> Starlette:
    """The Starlette application serving ``registry``.

    Args:
        registry: What is served.
        lifespan: Start-up and shut-down of the application.
        node: This instance among several (None: it is alone, and leads).
        users: Passwords by user name of HTTP basic auth (:mod:`.auth`); None or empty: open.
    """
    # Routes are built before any request: ``registry`` may be a stand-in until then.
    member: Node = node if node is not None else StandaloneNode(registry)
    place = Placement(registry, member)
    routes = [
        *ServiceRoutes(member).routes(place),
        *SubjectRoutes(registry).routes(place),
        *SchemaRoutes(registry).routes(place),
        *ConfigRoutes(registry).routes(place),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
        middleware=[Middleware(BasicAuth, users=users)] if users else None,
    )
