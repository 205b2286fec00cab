"""One typed settings object for every process of the store.

Values come from ``FEATURESTORE_*`` environment variables (nested with ``__``, for example
``FEATURESTORE_KAFKA__PORT=19092``) and an optional dotenv-style file named by
``FEATURESTORE_CONFIG``, whose values the environment overrides: ``KEY=value`` lines, an optional
``export`` before the key, the value optionally in matching single or double quotes (taken
literally, no escapes), ``#`` comment lines; not TOML. The loader is this module's own, not
pydantic-settings: it adds ``<SECRET>_FILE`` variables and messages that name the variable (and
the file's line). Load it once at the entry point with :func:`load_settings` and pass it down;
tests pass their own mapping instead of touching ``os.environ``. Read from the process's
environment, the settings also take the shape the local stack's data folder was started with
(``<data_dir>/stack.env``, written by ``stack up``: :mod:`featurestore.config._stack_shape`)
where neither the file nor the environment gives it.

What the loader refuses, naming the variable: a ``FEATURESTORE_*`` name that is no setting (with
the closest one; the few variables of that prefix that other code reads are listed in
:data:`NOT_SETTINGS`), a group given a value, a value of only whitespace, a port outside
1-65535, a URL without an http(s) scheme and a host, a blank entry of a comma-separated list.
An empty value is as if the variable were unset (the default applies), except for a list, where
it is the empty list, and a secret, which is taken as it is. Values and list entries lose their
surrounding whitespace; secrets are kept as given.

Every address is configuration: the defaults point at the local stack on loopback, with ports
chosen away from the usual ones so that the project's own servers never disturb others on the
machine.
"""

from __future__ import annotations

from featurestore.config import _servers
from featurestore.config import _settings
from featurestore.config._loader import NOT_SETTINGS
from featurestore.config._loader import load_settings
from featurestore.config._loader import settings_env
from featurestore.config._servers import *  # noqa: F403  (_servers.__all__)
from featurestore.config._settings import *  # noqa: F403  (_settings.__all__)
from featurestore.config._stack_shape import stack_shape_file
from featurestore.config._stack_shape import write_stack_shape

__all__ = [
    "NOT_SETTINGS",
    "load_settings",
    "settings_env",
    "stack_shape_file",
    "write_stack_shape",
    *_servers.__all__,
    *_settings.__all__,
]
