"""The service's settings live in the one settings object (``Settings.service``).

Kept as a module so that ``from featurestore.service.settings import ServiceSettings`` still works.
"""

from __future__ import annotations

from featurestore.config import ServiceSettings

__all__ = ["ServiceSettings"]
