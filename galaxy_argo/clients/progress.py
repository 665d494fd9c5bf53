"""Progress of long transfers: a log line every so often, so a 50 GiB stage-in is not silent.

s3transfer reports progress by calling a callback with byte counts from its worker threads; a
`Progress` is that callback plus ``close()``. `LoggedProgress` is the runner's: a transfer that
ends within ``interval`` logs nothing, a longer one logs bytes, percentage, rate and time left at
most once per ``interval``, then one line when it is done. The CLI draws a bar instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["LoggedProgress", "Progress", "ProgressFactory", "human_bytes"]

log = logging.getLogger(__name__)


class Progress(Protocol):
    """An s3transfer ``Callback`` that is closed when the transfer ends (done or failed)."""

    def __call__(self, amount: int) -> None:
        """``amount`` more bytes moved (negative when s3transfer retries a part)."""

    def close(self) -> None:
        """The transfer ended."""


#: (what is moving, total bytes or 0 if unknown) -> the progress of that transfer.
ProgressFactory = Callable[[str, int], Progress]


def human_bytes(count: float) -> str:
    """``1.50 GiB``-style size, binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class LoggedProgress:
    """Logs one transfer's progress at most once per ``interval`` seconds; thread-safe."""

    def __init__(
        self,
        what: str,
        total: int,
        *,
        interval: float = 30.0,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start timing now; nothing is logged until ``interval`` has passed."""
        self.what = what
        self.total = total
        self.done = 0
        self.interval = interval
        self._logger = logger
        self._clock = clock
        self._started = self._last = clock()
        self._logged = False
        self._lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        """Count ``amount`` bytes; log if ``interval`` passed since the last line."""
        with self._lock:
            self.done += amount
            now = self._clock()
            if now - self._last < self.interval:
                return
            self._last = now
            self._logged = True
            line = self.line(now)
        self._logger.info("%s", line)

    def line(self, now: float) -> str:
        """``what: done of total (pct), rate, about N s left``, as far as known."""
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [human_bytes(self.done)]
        if self.total:
            parts[0] += f" of {human_bytes(self.total)} ({100 * self.done / self.total:.0f}%)"
        parts.append(f"{rate / 1e6:.0f} MB/s")
        if self.total and rate > 0:
            parts.append(f"about {max(self.total - self.done, 0) / rate:.0f} s left")
        return f"{self.what}: " + ", ".join(parts)

    def close(self) -> None:
        """One closing line, only for a transfer that logged progress."""
        with self._lock:
            if not self._logged:
                return
            elapsed = max(self._clock() - self._started, 1e-9)
            done = self.done
        self._logger.info(
            "%s: %s in %.0f s (%.0f MB/s)", self.what, human_bytes(done), elapsed, done / elapsed / 1e6
        )
