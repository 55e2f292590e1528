"""Deploy code writes the server's settings as RK_* variables; a misspelt name would be
ignored by the server in silence. Every RK_* name in deploy and the CLI is a declared setting
(or one of the few names that are not the server's settings, listed here with why)."""

from __future__ import annotations

import re
from pathlib import Path

from reward_kit.service import ServeSettings

ROOT = Path(__file__).resolve().parents[2] / "reward_kit"
NOT_SETTINGS = {
    "RK_API_KEY": "the client's own key (the SDK's), printed in usage hints",
    "RK_API_KEY_SECRET_ARN": "read by the Lambda handler itself, to fetch the keys",
}


def test_every_rk_variable_deploy_writes_is_a_server_setting() -> None:
    declared = {spec.env for spec in ServeSettings.describe()}
    found: dict[str, str] = {}
    for path in [*(ROOT / "deploy").rglob("*.py"), *(ROOT / "cli").rglob("*.py")]:
        for name in re.findall(r'"(RK_[A-Z0-9_]+)"', path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    unknown = {n: where for n, where in found.items() if n not in declared | set(NOT_SETTINGS)}
    assert not unknown, f"not a ServeSettings variable: {unknown}"
    assert set(NOT_SETTINGS) <= set(found)  # the exceptions are still needed
