"""Fixtures shared by the whole suite.

Integration and end-to-end tests talk to the real servers of the local stack. The ``stack``
fixture starts whatever is not running (through the project's own stack code) and stops, at the
end of the session, exactly what it started; under ``make test`` the stack is already up and it
starts nothing. ``--external-stack`` points the suite at servers someone else runs (addresses
from ``FEATURESTORE_*`` variables) and starts nothing at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

import featurestore.mlflow_plugins  # noqa: F401  (first: MLflow's client telemetry off, see it)
from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.ingest import paths

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--external-stack",
        action="store_true",
        help="use servers that are already running elsewhere; start and stop nothing",
    )


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings of the stack under test, from FEATURESTORE_* variables.

    Against a secured stack, the SDK's clients of the tests take the token of every scope
    (``FEATURESTORE_TOKEN``) unless a test gives its own.
    """
    settings = load_settings()
    if settings.security.enabled:
        from featurestore.config import GRPC_SCOPES
        from featurestore.security import ALL_SCOPES
        from featurestore.security import local_credentials

        token = local_credentials(settings.data_dir, GRPC_SCOPES).grpc_tokens[ALL_SCOPES]
        os.environ.setdefault("FEATURESTORE_TOKEN", token)
    return settings


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared folder (real market data, conformance vectors)."""
    try:
        path = paths.shared_dir()
    except ConfigurationError as exc:
        pytest.fail(str(exc))
    if not (path / "testdata").is_dir():
        pytest.fail(f"shared folder not found at {path}; set FEATURESTORE_SHARED_DIR")
    return path


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """Ensure every server of the local stack is up and healthy; yields the settings."""
    from featurestore.ingest.kinds import register_event_schemas
    from featurestore.stack import Stack

    local = Stack(settings)
    if request.config.getoption("--external-stack"):
        unhealthy = [c.name for c in local.servers if not c.status().healthy]
        # External servers have no PID files here: check the servers themselves.
        unhealthy = [name for name in unhealthy if not local.component(name).healthy()]
        if unhealthy:
            pytest.fail(f"--external-stack: not reachable: {', '.join(unhealthy)}")
        register_event_schemas(settings)  # as `make run` does before applying definitions
        yield settings
        return
    started: list[str] = []  # filled as each server launches: a later one failing stops them
    try:
        local.up(on_launch=started.append)
        register_event_schemas(settings)
        yield settings
    finally:
        local.down(started)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Makes names (topics, subjects, tables) unique to this test run."""
    run = uuid.uuid4().hex[:8]

    def make(prefix: str) -> str:
        return f"{prefix}-{run}"

    return make
