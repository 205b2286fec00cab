"""The local stack: real Kafka, PostgreSQL, Redis, schema registry and MLflow on loopback.

Everything lives under one folder (``settings.data_dir``, ``.stack/`` by default): each server's
data, its log and its PID file under ``run/``, and the JVM jars Maven resolved.
"""

from __future__ import annotations

from featurestore.stack.base import Component
from featurestore.stack.base import ComponentStatus
from featurestore.stack.jars import resolve_jars
from featurestore.stack.manager import Stack
from featurestore.stack.manager import UpResult

__all__ = ["Component", "ComponentStatus", "Stack", "UpResult", "resolve_jars"]
