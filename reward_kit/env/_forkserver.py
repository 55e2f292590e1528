"""The server's side of the sessions' fork server (_zygote.py) and of each session process.

A session process is killed through its pidfd (race-free: the handle cannot name a process
that reused the pid) and its process group (whatever its tools started). The fork server is
started on the event loop's thread, because PDEATHSIG fires when the *thread* that started a
process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from .._errors import EvaluatorUnavailable, LoadError
from ._wire import FrameError, read_frame, write_frame

__all__ = ["ForkServer", "SessionProcess"]

logger = logging.getLogger("reward_kit.env")

_START_SECONDS = 60.0
# Server secrets no tool needs (a tool could read them and show them to the model); mirrors
# the engine's list for its workers. The operator adds more with --worker-env-drop.
SECRET_VARIABLES = (
    "RK_API_KEY*",
    "RK_SSL_KEYFILE",
    "RK_*SECRET*",
    "RK_*TOKEN*",
    "RK_*PASSWORD*",
)


class SessionProcess:
    """One session's process: send a request, await its answer, kill it."""

    def __init__(
        self,
        *,
        pid: int,
        pidfd: int | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._reader = reader
        self._writer = writer
        self.alive = True
        self._overran = False

    async def request(self, message: dict[str, Any], timeout: float) -> Any:
        """The answer to ``message``; TimeoutError past ``timeout`` seconds, FrameError when
        the process died. Either way the caller should :meth:`kill` it."""
        if not self.alive:
            raise FrameError("the session's process has ended")
        await write_frame(self._writer, message)
        # A bare timer that kills the process, not asyncio.timeout (a fifth of the pipe's round
        # trip) or wait_for (a task too): an overrun ends the session anyway.
        self._overran = False
        timer = asyncio.get_running_loop().call_later(timeout, self._overrun)
        try:
            return await read_frame(self._reader)
        except FrameError:
            if self._overran:
                raise asyncio.TimeoutError(f"no answer within {timeout}s") from None
            raise
        finally:
            timer.cancel()

    def _overrun(self) -> None:
        self._overran = True
        self.kill()  # closing the connection ends the pending read

    def kill(self) -> None:
        """SIGKILL the process and its group; safe to repeat."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            os.close(self._pidfd)
            self._pidfd = None
        self._writer.close()


class ForkServer:
    """Starts the fork server for ``targets`` and asks it for session processes."""

    def __init__(
        self,
        *,
        targets: Iterable[str],
        memory_limit_mb: int | None,
        env_drop: Iterable[str] = (),
    ) -> None:
        self.targets = list(dict.fromkeys(targets))
        self.memory_limit_mb = memory_limit_mb
        self.env_drop = (*SECRET_VARIABLES, *env_drop)
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._lock = asyncio.Lock()
        self.environments: list[str] = []

    @property
    def pid(self) -> int | None:
        """The fork server's pid, while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the fork server (on this thread) and wait until it has imported the targets."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "reward_kit.env._zygote", str(theirs.fileno())]
        environ = {
            name: value
            for name, value in os.environ.items()
            if not any(fnmatch.fnmatchcase(name, pattern) for pattern in self.env_drop)
        }
        self._process = subprocess.Popen(
            [*command, json.dumps(self.targets)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=environ,
        )
        theirs.close()
        self._control = ours
        ours.settimeout(_START_SECONDS)
        reply = json.loads(await asyncio.to_thread(ours.recv, 65536) or b'{"error": "exited"}')
        ours.settimeout(None)
        if "error" in reply:
            await self.close()
            raise LoadError(f"the environments' fork server failed: {reply['error']}")
        self.environments = reply["ready"]

    async def spawn(self, env: str) -> SessionProcess:
        """A new process running one ``env`` instance (not yet reset)."""
        async with self._lock:
            if self._process is None or self._process.poll() is not None:
                logger.warning("the environments' fork server is gone; starting a new one")
                await self.close()
                await self.start()
            try:
                pid, fds = await asyncio.to_thread(self._spawn, env)
            except (OSError, ValueError) as error:
                raise EvaluatorUnavailable(f"cannot start a session process: {error}") from error
        for fd in fds:  # recvmsg hands over inheritable fds: no subprocess may keep them
            os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fds[0])
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return SessionProcess(
            pid=pid, pidfd=fds[1] if len(fds) > 1 else None, reader=reader, writer=writer
        )

    def _spawn(self, env: str) -> tuple[int, list[int]]:
        assert self._control is not None
        request = {"env": env, "memory_limit_mb": self.memory_limit_mb}
        self._control.send(json.dumps(request).encode())
        data, fds, _, _ = socket.recv_fds(self._control, 65536, 2)
        if not data:
            raise OSError("the fork server exited")
        reply = json.loads(data)
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            raise ValueError(reply["error"])
        return int(reply["pid"]), fds

    async def close(self) -> None:
        """Stop the fork server; it kills every session process as it exits."""
        if self._control is not None:
            self._control.close()
            self._control = None
        process, self._process = self._process, None
        if process is None:
            return
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
