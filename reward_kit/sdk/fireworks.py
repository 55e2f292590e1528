"""Fireworks RFT: score its samples with a reward-kit evaluator.

Fireworks runs an uploaded ``main.py:evaluate(messages, ground_truth=None, tools=None,
**kwargs)`` per sample. :func:`render_shim` writes that file (the module
``reward_kit/sdk/_fireworks_main.py`` with its three constants set): it forwards each call to
``URL/evaluate/NAME`` with the API key Fireworks injects from its secret store, and returns the
EvaluateResult dict. It fixes the three defects of reward-kit 0.4's shim: it sends the key,
targets the function's path rather than the base URL, and sends any-JSON ground truths and
tools. :func:`register_evaluator` uploads it (``rk fireworks register``).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import httpx

from .._errors import EvaluatorUnavailable, RequestRejected

__all__ = ["DEFAULT_API_BASE", "register_evaluator", "render_shim"]

DEFAULT_API_BASE = "https://api.fireworks.ai"


def render_shim(*, url: str, function: str, api_key_env: str | None, timeout: float) -> str:
    """The text of ``main.py`` for one function of the evaluator at ``url``.

    >>> text = render_shim(url="http://h:8000", function="exact", api_key_env="RK_KEY",
    ...                    timeout=60)
    >>> "EVALUATOR_URL = 'http://h:8000/evaluate/exact'" in text
    True
    """
    text = resources.files(__package__).joinpath("_fireworks_main.py").read_text()
    values = {
        "EVALUATOR_URL": f"{url.rstrip('/')}/evaluate/{function}",
        "API_KEY_ENV": api_key_env or "",
        "TIMEOUT": float(timeout),
    }
    for name, value in values.items():
        text, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", text, flags=re.M)
        if count != 1:  # the template and this function drifted apart
            raise RuntimeError(f"the Fireworks shim template has no single {name} line")
    return text


def register_evaluator(
    *,
    evaluator_id: str,
    url: str,
    function: str,
    code: str,
    account: str,
    api_key: str,
    api_base: str = DEFAULT_API_BASE,
    display_name: str | None = None,
    description: str = "",
) -> str:
    """Upload ``code`` (from :func:`render_shim`) as a Fireworks evaluator; its resource name."""
    body = {
        "evaluatorId": evaluator_id,
        "evaluator": {
            "displayName": display_name or evaluator_id,
            "description": description or f"reward-kit evaluator {function} at {url}",
            "multiMetrics": True,
            "rollupSettings": {"skipRollup": True},
            "criteria": [_criterion(url, function, code)],
        },
    }
    endpoint = f"{api_base.rstrip('/')}/v1/accounts/{account}/evaluators"
    try:
        response = httpx.post(
            endpoint, json=body, headers={"Authorization": f"Bearer {api_key}"}, timeout=60.0
        )
    except httpx.HTTPError as error:
        raise EvaluatorUnavailable(f"could not reach {endpoint}: {error}") from None
    if not response.is_success:
        refused = RequestRejected if response.status_code < 500 else EvaluatorUnavailable
        raise refused(
            f"Fireworks answered {response.status_code} to {endpoint}: {response.text[:500]}",
            status_code=response.status_code,
        )
    return _field(response, "name") or f"accounts/{account}/evaluators/{evaluator_id}"


def _criterion(url: str, function: str, code: str) -> dict[str, Any]:
    return {
        "name": function,
        "type": "CODE_SNIPPETS",
        "description": f"forwards to {url.rstrip('/')}/evaluate/{function}",
        "codeSnippets": {
            "language": "python",
            "fileContents": {"main.py": code},
            "entryFile": "main.py",
            "entryFunc": "evaluate",
        },
    }


def _field(response: httpx.Response, key: str) -> str | None:
    try:
        value = response.json().get(key)
    except (json.JSONDecodeError, AttributeError):
        return None
    return str(value) if value else None
