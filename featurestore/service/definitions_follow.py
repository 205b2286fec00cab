"""A running server serves what is applied: it follows Feast's registry.

``featurestore registry apply`` changes what the store defines while gRPC servers run, on this
host and others. Every ``service.definitions_refresh_s`` a server asks PostgreSQL for the
registry's digest of its project (:func:`~featurestore.definitions.snapshot.registry_digest`,
one query). When it differs from the digest its definitions were read at, and has stayed the
same for one more check (an apply registers its objects one by one, then keeps the snapshot of
what it applied), the server reads them again in a worker thread
(:func:`~featurestore.definitions.snapshot.kept_definitions`: that snapshot, else Feast) and
hands them to ``use``, which replaces the online catalog and the export's definitions. Calls
under way finish with the definitions they started with.

A registry that does not answer, or holds nothing for the project, changes nothing: the server
goes on serving what it has. Definitions that cannot be read or served (a registry read that
fails, a join key the online store cannot key) are logged; the server keeps the old ones and
tries again after a pause that doubles, up to five minutes, or at the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from functools import partial

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions.snapshot import KeptDefinitions
from featurestore.definitions.snapshot import kept_definitions
from featurestore.definitions.snapshot import registry_digest
from featurestore.errors import FeatureStoreError

__all__ = ["DefinitionsFollow"]

logger = logging.getLogger(__name__)

_FIRST_RETRY_S = 10.0
_LAST_RETRY_S = 300.0


@dataclass
class _Pause:
    """Reading ``digest``'s definitions failed ``failures`` times: not again before ``until``."""

    digest: str
    failures: int
    until: float


@dataclass
class DefinitionsFollow:
    """Reads the definitions again whenever the registry's digest changes; see the module."""

    held: str | None
    """The registry's digest the served definitions were read at."""
    current_digest: Callable[[], str | None]
    """Asks the registry for its digest now (None: no answer, or nothing for the project)."""
    read: Callable[[], KeptDefinitions]
    """Reads the definitions (and the digest they are filed under)."""
    use: Callable[[Definitions], Awaitable[None]]
    """Serves them."""
    interval_s: float
    clock: Callable[[], float] = time.monotonic
    _seen: str | None = field(default=None, init=False)
    _pause: _Pause | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @classmethod
    def of(
        cls,
        settings: Settings,
        kept: KeptDefinitions,
        use: Callable[[Definitions], Awaitable[None]],
    ) -> DefinitionsFollow:
        """Follow the registry of ``settings`` for the project of ``kept``."""
        project = kept.definitions.project
        return cls(
            held=kept.digest,
            current_digest=partial(registry_digest, settings, project),
            read=partial(kept_definitions, settings, project),
            use=use,
            interval_s=settings.service.definitions_refresh_s,
        )

    async def check_once(self) -> bool:
        """Serve the registry's definitions if they changed; True when they were replaced."""
        digest = await asyncio.to_thread(self.current_digest)
        if digest is None or digest == self.held:
            return False
        if digest != self._seen:
            self._seen = digest  # an apply under way: read it when it has settled
            return False
        pause = self._pause if self._pause is not None and self._pause.digest == digest else None
        if pause is not None and self.clock() < pause.until:
            return False
        try:
            kept = await asyncio.to_thread(self.read)
            await self.use(kept.definitions)
        except FeatureStoreError as exc:
            failures = pause.failures + 1 if pause is not None else 1
            wait_s = min(_FIRST_RETRY_S * 2 ** (failures - 1), _LAST_RETRY_S)
            self._pause = _Pause(digest, failures, self.clock() + wait_s)
            logger.error(
                "the definitions applied to the registry are not served (still serving the"
                " previous ones; trying again in %.0f s or at the next apply): %s",
                wait_s,
                exc,
            )
            return False
        self.held, self._pause = kept.digest, None
        definitions = kept.definitions
        logger.info(
            "serving the definitions applied to project %s: %d views, %d feature services",
            definitions.project,
            len(definitions.views),
            len(definitions.services),
        )
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check_once()
            except Exception:  # a bug in one check must not end the following
                logger.exception("following the registry failed")

    def start(self) -> None:
        """Check every ``interval_s`` from now on (call on the server's loop); 0: never."""
        if self.interval_s > 0:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="definitions-follow"
            )

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
