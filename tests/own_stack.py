"""A stack of a test's own beside the shared one: its own data folder and ports, never the
shared stack's servers, PID files or data."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from featurestore.config import load_settings
from featurestore.stack import Stack

__all__ = ["own_stack"]


@contextmanager
def own_stack(
    data_dir: Path,
    env: Mapping[str, str],
    servers: Sequence[str],
    *,
    stop: Sequence[str] = (),
    start_timeout_s: float = 0.0,
) -> Iterator[Stack]:
    """The stack in ``data_dir`` with the settings ``env`` (its ports), ``servers`` up for the
    block and down after it, with what the block started itself among ``stop``.

    Every one of ``servers`` must be started by this call (none ran already); each gets at least
    ``start_timeout_s`` to start. The jars, resolved once for the checkout, are reused.
    """
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(data_dir), **env})
    # Made already where the settings made credentials (secured: <data_dir>/certs).
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "jars").symlink_to(load_settings().data_dir.resolve() / "jars")
    stack = Stack(settings)
    for component in stack.servers:
        component.start_timeout = max(component.start_timeout, start_timeout_s)
    try:
        if servers:
            started = stack.up(servers).started
            assert sorted(started) == sorted(servers), started
        yield stack
    finally:
        stack.down([*stop, *servers])
