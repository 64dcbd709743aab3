"""Per-member rate limits (SPEC §13): commands per minute, counted in this process.

A member past the limit is told once, in one sentence, and what they send until the
window has room again is dropped without an answer (a flood gets one reply, not a
flood of replies). Nothing they sent while limited changes anything.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from enum import Enum


class Verdict(Enum):
    OK = "ok"
    REFUSE = "refuse"  # the first message past the limit: say so
    DROP = "drop"  # past the limit and already told


class RateLimiter:
    """At most `limit` events per key in any `window` (0: no limit)."""

    def __init__(self, limit: int, window: timedelta = timedelta(minutes=1)) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[tuple[str, ...], deque[datetime]] = {}
        self._told: set[tuple[str, ...]] = set()

    def check(self, key: tuple[str, ...], now: datetime) -> Verdict:
        if self.limit <= 0:
            return Verdict.OK
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._told.discard(key)
            if len(self._seen) > 10_000:
                self._forget_idle(now)
            return Verdict.OK
        if key in self._told:
            return Verdict.DROP
        self._told.add(key)
        return Verdict.REFUSE

    def _forget_idle(self, now: datetime) -> None:
        idle = [k for k, t in self._seen.items() if not t or t[-1] <= now - self.window]
        for key in idle:
            del self._seen[key]
            self._told.discard(key)
