"""``python -m featurestore.schema_registry``: serve with the environment's settings."""

from __future__ import annotations

from featurestore.config import load_settings
from featurestore.schema_registry.server import serve

if __name__ == "__main__":
    serve(load_settings())
