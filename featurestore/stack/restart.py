"""When to start a process of the local stack again after it died: capped, jittered backoff.

Pure: the supervisor (``supervisor.py``) hands in each death and restart with its time and a
random draw; nothing here reads a clock, a file or a process, so every rule is a unit test.

A process that dies soon after it started (within ``stable_after_s``) continues a run of quick
deaths, and each one doubles the wait before the next start, up to ``max_backoff_s``. Each wait
is drawn from ``[(1 - jitter) * d, d]`` so that processes that died together (every client of a
Redis that went away) do not all come back in the same instant. After ``crash_loop_after``
quick deaths in a row the process is reported as crash-looping; it is still started again once
per capped wait, as Kubernetes' CrashLoopBackOff does, so it recovers by itself once its cause
is fixed, but it never spins. A process that lived past ``stable_after_s`` ends its run: its
next death waits the initial backoff again.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from featurestore.config import SupervisorSettings
from featurestore.errors import ConfigurationError

__all__ = ["RestartPolicy", "RestartRecord"]


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before starting a dead process again.

    The first four fields are :class:`~featurestore.config.SupervisorSettings` (documented there);
    :meth:`from_settings` builds the policy the local stack uses.
    """

    initial_backoff_s: float
    max_backoff_s: float
    stable_after_s: float
    crash_loop_after: int
    multiplier: float = 2.0
    """Each quick death in a row multiplies the wait by this."""
    jitter: float = 0.5
    """The random share of each wait: 0.5 draws it from the upper half of the backoff."""

    def __post_init__(self) -> None:
        """Refuse a backoff, multiplier, jitter or crash-loop count out of its range."""
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ConfigurationError("restart backoff: need 0 < initial <= max")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1 or self.crash_loop_after < 1:
            raise ConfigurationError(
                "restart backoff: need multiplier >= 1, 0 <= jitter <= 1, crash_loop_after >= 1"
            )

    @classmethod
    def from_settings(cls, settings: SupervisorSettings) -> RestartPolicy:
        """The policy the settings describe."""
        return cls(
            initial_backoff_s=settings.initial_backoff_s,
            max_backoff_s=settings.max_backoff_s,
            stable_after_s=settings.stable_after_s,
            crash_loop_after=settings.crash_loop_after,
        )

    def backoff(self, quick_deaths: int, draw: float) -> float:
        """The wait after the ``quick_deaths``-th quick death in a row (1 for the first).

        Args:
            quick_deaths: the position of this death in its run, from 1.
            draw: a random number in ``[0, 1)``; 0 gives the full backoff.
        """
        exponent = max(quick_deaths, 1) - 1
        # min() before the power would overflow: the cap is reached long before 2**1000.
        capped = self.max_backoff_s
        if exponent < 64:
            capped = min(capped, self.initial_backoff_s * self.multiplier**exponent)
        return capped * (1 - self.jitter * draw)


@dataclass(frozen=True)
class RestartRecord:
    """What the supervisor knows of one process: shown by ``featurestore stack status``.

    Times are Unix seconds, since the record is read by another process.
    """

    restarts: int = 0
    """How often the supervisor started the process again."""
    quick_deaths: int = 0
    """Deaths in a row, each within ``stable_after_s`` of its start; 0 once the process is well."""
    crash_loop: bool = False
    """Whether ``quick_deaths`` reached the policy's ``crash_loop_after``."""
    last_exit: str | None = None
    """Why the process last died, as far as anyone can tell."""
    last_exit_at: float | None = None
    """When the supervisor saw it dead."""
    next_start_at: float | None = None
    """When it is started again; None while it runs or is not to be started."""
    pid: int | None = None
    """The live process this record follows."""
    started_at: float | None = None
    """When that process started (None: not known, so its death counts as quick)."""

    def running(self, pid: int, started_at: float | None) -> RestartRecord:
        """The record of a live process, first seen (or seen again) with this PID."""
        return replace(self, pid=pid, started_at=started_at, next_start_at=None)

    def settle(self, policy: RestartPolicy, now: float) -> RestartRecord:
        """A live process that has run past ``stable_after_s`` ends its run of quick deaths."""
        if self.quick_deaths == 0 or self.started_at is None:
            return self
        if now - self.started_at < policy.stable_after_s:
            return self
        return replace(self, quick_deaths=0, crash_loop=False)

    def died(self, policy: RestartPolicy, now: float, reason: str, draw: float) -> RestartRecord:
        """The process was found dead at ``now``: when to start it again."""
        ran = None if self.started_at is None else now - self.started_at
        quick = self.quick_deaths + 1 if ran is None or ran < policy.stable_after_s else 1
        return replace(
            self,
            quick_deaths=quick,
            crash_loop=quick >= policy.crash_loop_after,
            last_exit=reason,
            last_exit_at=now,
            next_start_at=now + policy.backoff(quick, draw),
            pid=None,
            started_at=None,
        )

    def restarted(self, pid: int, now: float) -> RestartRecord:
        """The supervisor started the process again."""
        return replace(
            self, restarts=self.restarts + 1, pid=pid, started_at=now, next_start_at=None
        )

    def released(self) -> RestartRecord:
        """The process was stopped on purpose (or finished its job): nothing is scheduled."""
        return replace(self, pid=None, started_at=None, next_start_at=None)

    def to_json(self) -> dict[str, Any]:
        """A JSON object for the supervisor's state file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RestartRecord:
        """The record of :meth:`to_json`; unknown keys (a newer writer) are ignored."""
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
