"""The authoring API without a server: schemas, argument checks, discovery, rk-serve."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reward_kit import EvaluateResult
from reward_kit._errors import LoadError
from reward_kit.env import Environment, ToolResult, find_environments, tool
from tests.conftest import free_port, rk_serve, wait_for_health

from ._http import call
from .conftest import GAMES, client, eventually, serve


class Shop(Environment):
    """Buy things."""

    name = "shop"
    max_steps = 4

    def reset(self, *, task=None, seed=None):
        self.cart: list[str] = []
        return "welcome"

    @tool
    def add(self, item: str, count: int = 1, gift: bool = False) -> ToolResult:
        """Put an item in the cart.

        Args:
            item: what to buy.
            count: how many,
                at least one.
        """
        self.cart += [item] * count
        return ToolResult(content=f"{len(self.cart)} in cart", reward=0.1)

    def helper(self) -> None:
        """Not a tool."""


def test_schema_comes_from_hints_and_docstring() -> None:
    (schema,) = Shop.describe()["tools"]
    function = schema["function"]
    assert function["name"] == "add"
    assert function["description"] == "Put an item in the cart."
    assert function["parameters"] == {
        "type": "object",
        "properties": {
            "item": {"type": "string", "description": "what to buy."},
            "count": {"type": "integer", "default": 1, "description": "how many, at least one."},
            "gift": {"type": "boolean", "default": False},
        },
        "required": ["item"],
    }


def test_arguments_are_checked_naming_the_field() -> None:
    add = Shop.tools()["add"]
    assert add.validate({"item": "tea", "count": "2"}) == {"item": "tea", "count": 2, "gift": False}
    with pytest.raises(ValueError, match="count: Input should be a valid integer"):
        add.validate({"item": "tea", "count": "lots"})
    with pytest.raises(ValueError, match="colour: Extra inputs are not permitted"):
        add.validate({"item": "tea", "colour": "red"})
    with pytest.raises(ValueError, match="item: Field required"):
        add.validate({})


def test_bad_class_attributes_are_refused() -> None:
    with pytest.raises(TypeError, match="max_steps"):
        type("Broken", (Environment,), {"max_steps": 0})
    with pytest.raises(TypeError, match="step_timeout"):
        type("Broken", (Environment,), {"step_timeout": -1})


def test_default_score_sums_step_rewards() -> None:
    from reward_kit.env import LedgerEntry, StepRecord, Trajectory, arguments_hash, content_hash

    def entry(step: int, reward: float) -> LedgerEntry:
        return LedgerEntry(
            step=step, tool_call_id=f"c{step}", name="add", arguments={"item": "x"},
            arguments_hash=arguments_hash({"item": "x"}), content="ok",
            output_hash=content_hash("ok"), reward=reward, status="ok",
        )  # fmt: skip

    steps = [StepRecord(index=i, calls=[entry(i, r)]) for i, r in enumerate((0.1, 0.0, 1.0))]
    trajectory = Trajectory(env="shop", seed=1, observation="welcome", status="done", steps=steps)
    result = Shop().score(trajectory)
    assert isinstance(result, EvaluateResult)
    assert result.score == pytest.approx(1.1)
    assert [s.base_reward for s in result.step_outputs or []] == [0.1, 0.0, 1.0]
    assert [m.role for m in trajectory.messages()] == ["user"] + ["assistant", "tool"] * 3


def test_discovery_finds_environments_and_refuses_duplicate_names(tmp_path: Path) -> None:
    assert sorted(find_environments([GAMES])) == ["guess_number", "hostile"]
    assert list(find_environments([f"{GAMES}:Hostile"])) == ["hostile"]
    twice = tmp_path / "twice.py"
    twice.write_text(
        "from reward_kit.env import Environment\n"
        "class A(Environment):\n    name = 'same'\n"
        "class B(Environment):\n    name = 'same'\n"
    )
    with pytest.raises(LoadError, match="two environments are named 'same'"):
        find_environments([str(twice)])


def test_rk_serve_serves_a_file_of_environments_only(tmp_path: Path) -> None:
    envs = tmp_path / "envs.py"
    envs.write_text(
        "from reward_kit.env import Environment, tool\n"
        "class Ping(Environment):\n"
        "    def reset(self, *, task=None, seed=None):\n        return 'ping me'\n"
        "    @tool\n    def ping(self) -> str:\n        '''Answer pong.'''\n        return 'pong'\n"
    )
    with rk_serve(str(envs)) as url:
        start = httpx.post(f"{url}/envs/ping/sessions", json={})
        assert start.status_code == 201, start.text
        sid = start.json()["session_id"]
        ping = call("ping", "p")
        answer = httpx.post(f"{url}/envs/ping/sessions/{sid}/step", json={"tool_calls": [ping]})
        assert answer.json()["results"][0]["content"] == "pong"
        assert httpx.get(f"{url}/functions").status_code == 200


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:  # it exited meanwhile
            continue
        for task in tasks:
            with contextlib.suppress(OSError), open(f"/proc/{current}/task/{task}/children") as f:
                children = {int(c) for c in f.read().split()}
                found |= children
                todo += children
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_nothing_outlives_a_killed_server() -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rk-serve"), GAMES, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        for _ in range(3):
            sid = httpx.post(f"{url}/envs/hostile/sessions", json={}).json()["session_id"]
            spawn = {"tool_calls": [call("spawn", "s")]}
            httpx.post(f"{url}/envs/hostile/sessions/{sid}/step", json=spawn)
        below = _descendants(process.pid)
        assert len(below) >= 7  # the fork server, 3 sessions, 3 detached sleeps
    finally:
        process.kill()  # SIGKILL: no shutdown code runs
        process.wait()
    eventually(lambda: not any(_alive(pid) for pid in below), "every session process is gone")


def test_server_secrets_do_not_reach_the_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_API_KEYS", "alice " + "s" * 32)
    monkeypatch.setenv("RK_DB_PASSWORD", "hunter2")
    monkeypatch.setenv("RK_EXTRA", "dropped by --worker-env-drop")
    monkeypatch.setenv("HARMLESS", "kept")
    with serve(worker_env_drop=("RK_EXTRA",)) as live, client(live) as http:
        sid = http.post("/envs/hostile/sessions", json={}).json()["session_id"]
        names = ("RK_API_KEYS", "RK_DB_PASSWORD", "RK_EXTRA", "HARMLESS")
        calls = [call("getenv", name, variable=name) for name in names]
        answer = http.post(f"/envs/hostile/sessions/{sid}/step", json={"tool_calls": calls})
        contents = [r["content"] for r in answer.json()["results"]]
        assert contents == ["<unset>", "<unset>", "<unset>", "kept"]
