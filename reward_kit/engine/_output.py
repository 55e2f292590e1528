"""What a reward prints in a worker reaches the server's log capped and escaped.

A worker's stdout and stderr (file descriptors 1 and 2, so subprocesses a reward starts are
covered too) are a pipe. A thread forwards each line to the server's original stream, as a
text log line with a ``[worker PID]`` prefix or as a JSON log record (``--log-format json``),
with control characters escaped, so printed model output cannot forge log lines, and at most
``limit`` bytes per item, so a reward printing 50 MB does not flood the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time

from .._escaping import escape

__all__ = ["OUTPUT_LIMIT", "OutputCap"]

# Bytes of one item's output forwarded to the server log; the rest is counted and dropped.
OUTPUT_LIMIT = 64 * 1024


class OutputCap:
    """Redirects this process's fds 1 and 2 through a capped, escaping forwarder."""

    def __init__(self, *, limit: int = OUTPUT_LIMIT, log_format: str = "text") -> None:
        self.limit = limit
        self.log_format = log_format
        self._generation = 0
        self._target = -1
        self._started = False
        # True while the forwarding thread runs (it ends when fds 1 and 2 are closed).
        self.forwarding = False

    def start(self) -> None:
        if self._started or not hasattr(os, "pipe"):
            return
        self._started = True
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._target = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        self.forwarding = True
        threading.Thread(target=self._forward, args=(read,), name="rk-output", daemon=True).start()

    def new_item(self) -> None:
        """Flush what the previous item printed; the next bytes count against a new budget."""
        for stream in (sys.stdout, sys.stderr):
            # Not contextlib.suppress: this runs before every item, and that costs 0.3 us each.
            try:  # noqa: SIM105
                stream.flush()
            except Exception:  # a reward may have replaced or closed the stream
                pass
        self._generation += 1

    def _forward(self, read: int) -> None:
        try:
            self._forward_lines(read)
        finally:
            self.forwarding = False

    def _forward_lines(self, read: int) -> None:
        generation, used, dropped, pending = -1, 0, 0, b""
        while chunk := _read(read):
            if generation != self._generation:
                self._report_dropped(dropped)
                generation, used, dropped = self._generation, 0, 0
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > self.limit:  # one endless line: cut it here
                lines.append(pending)
                pending = b""
            for line in lines:
                if used >= self.limit:
                    if not dropped:  # said at once: the item may be the worker's last
                        self._write(f"(output capped at {self.limit} bytes per item)")
                    dropped += len(line) + 1
                    continue
                line = line[: self.limit - used]
                used += len(line) + 1
                self._write(line.decode(errors="replace"))
        self._report_dropped(dropped)

    def _report_dropped(self, dropped: int) -> None:
        if dropped:
            self._write(f"({dropped} bytes of output dropped)")

    def _write(self, text: str) -> None:
        if self.log_format == "json":
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "level": "INFO",
                "logger": "reward_kit.worker.output",
                "worker": os.getpid(),
                "message": escape(text),
            }
            line = json.dumps(record)
        else:
            line = f"[worker {os.getpid()}] {escape(text)}"
        with contextlib.suppress(OSError):
            os.write(self._target, line.encode() + b"\n")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
