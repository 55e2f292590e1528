"""The soft deadline of each call in a worker: SIGALRM, on the worker's main thread.

A Python-level hang is interrupted with :class:`DeadlineSignal` and reported as a timeout
without losing the worker; the parent's hard deadline covers what a signal cannot interrupt.

Each call arms the timer as it starts, and does not disarm it as it ends: an alarm between
calls is ignored, and the next call sets the timer again anyway. :func:`disarm` stops it once
the chunk is done, so nothing fires between tasks. That is one system call per call instead
of two (each costs about 0.7 us in this VM, on a 20 us item). The timer is still set again at
every call, never left running from an earlier one: a reward may have changed it (libraries
such as ``timeout-decorator`` put back their caller's handler, but turn the timer off).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from ._outcome import DeadlineSignal

try:
    # CPython's C module under ``signal``: its getsignal returns the handler as it is, where
    # ``signal.getsignal`` builds an enum on every call (3 us an item on a 9 us reward).
    from _signal import getsignal as _raw_getsignal  # type: ignore[import-not-found]
except ImportError:  # another interpreter: the public function, a little slower
    _raw_getsignal = signal.getsignal

__all__ = ["Deadline", "disarm"]

# After the first alarm, SIGALRM repeats this often: a reward that swallowed one gets the next.
REPEAT = 0.25


class Deadline:
    """The soft deadline of one call: ``with Deadline(seconds) as deadline:`` (on the main
    thread; elsewhere it does nothing). ``fired`` stays set once the alarm came, so a reward
    that swallows the signal (a bare ``except:``) and returns is still reported as a timeout.
    One object can serve a chunk's calls one after the other (:meth:`again`)."""

    __slots__ = ("_main", "armed", "fired", "seconds")

    def __init__(self, seconds: float, *, main_thread: bool | None = None) -> None:
        self.seconds = seconds
        self.armed = True
        self.fired = False
        # Signals reach only the main thread; the caller may have checked that already.
        if main_thread is None:
            main_thread = threading.current_thread() is threading.main_thread()
        self._main = main_thread

    def again(self, seconds: float) -> Deadline:
        """This deadline, ready for another call of ``seconds``."""
        self.seconds = seconds
        self.armed = True
        self.fired = False
        return self

    def __enter__(self) -> Deadline:
        global _current
        if self._main:
            if _raw_getsignal(signal.SIGALRM) is not _on_alarm:
                signal.signal(signal.SIGALRM, _on_alarm)
            _current = self
            signal.setitimer(signal.ITIMER_REAL, self.seconds, REPEAT)
        return self

    def __exit__(self, *exc: object) -> None:
        global _current
        try:  # an alarm raising right here must not skip the line below
            self.armed = False
        finally:
            # The timer stays armed: the next call sets it again, or disarm() stops it.
            _current = None


_current: Deadline | None = None


def disarm() -> None:
    """Stop the timer: the chunk is done (from the main thread)."""
    global _current
    _current = None
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)


def _on_alarm(signum: int, frame: Any) -> None:
    # One handler for the worker's life, never restored: an alarm between calls or after the
    # chunk is ignored instead of raising in the middle of the next item or of pebble.
    deadline = _current
    if deadline is None:
        return
    deadline.fired = True
    if deadline.armed:
        raise DeadlineSignal
