"""The peer harness for the rk run benchmark: inspect_ai doing the same job on the same mock.

Runs in its own venv (bench_run.py makes it): PROMPTS samples x EPOCHS epochs through
inspect's OpenAI-compatible provider (``openai-api/mock/mock``, MOCK_BASE_URL), a trivial
scorer (``includes()``), MAX_CONNECTIONS in flight, no display, no realtime log. Prints one
JSON line: the wall time of ``eval()`` (imports and venv start excluded, as for rk run) and the
samples it scored.

    python peer_inspect.py BASE_URL PROMPTS EPOCHS MAX_CONNECTIONS LOG_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time

from inspect_ai import Epochs, Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


def main() -> None:
    base_url, prompts, epochs, connections, log_dir = sys.argv[1:6]
    os.environ["MOCK_BASE_URL"] = base_url
    os.environ["MOCK_API_KEY"] = "bench"
    samples = [
        Sample(id=i, input=f"What is {i} + {i}? Answer after ####.", target="42")
        for i in range(int(prompts))
    ]
    task = Task(dataset=samples, solver=generate(), scorer=includes(), epochs=Epochs(int(epochs)))
    started = time.perf_counter()
    logs = eval(
        task,
        model="openai-api/mock/mock",
        max_connections=int(connections),
        display="none",
        log_dir=log_dir,
        log_realtime=False,
        max_tokens=16,
        temperature=0.8,
    )
    wall = time.perf_counter() - started
    log = logs[0]
    scored = sum(1 for s in log.samples or [] if s.scores)
    print(json.dumps({"wall_s": wall, "samples": scored, "status": log.status}))


if __name__ == "__main__":
    main()
