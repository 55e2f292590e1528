"""Run model-written code safely: bubblewrap namespaces plus resource limits.

>>> from reward_kit.sandbox import Sandbox, Limits
>>> result = Sandbox(limits=Limits(wall_seconds=5)).run_python("print(1 + 1)")  # doctest: +SKIP
>>> result.status, result.stdout  # doctest: +SKIP
('ok', '2\\n')
"""

from ._config import Limits, RunResult, RunStatus, SandboxUnavailable
from ._sandbox import Sandbox
from ._testrun import PreludeFailed, run_python_tests

__all__ = [
    "Limits",
    "PreludeFailed",
    "RunResult",
    "RunStatus",
    "Sandbox",
    "SandboxUnavailable",
    "run_python_tests",
]
