"""``remote_environment``: a served environment as TRL's ``environment_factory``. The class is
built from the server's tool schemas, pickles without its connections, plays an episode the
way TRL drives it, and a real one-step GRPO run with a tiny model leaks no session."""

from __future__ import annotations

import importlib.util
import inspect
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit import ConfigurationError, RewardKitError
from reward_kit.sdk import _env_core, _trl_env
from reward_kit.sdk.env import EnvClient
from reward_kit.sdk.trl import RemoteEnvironment, remote_environment

from ..conftest import ROOT, LiveServer, require_integration
from .conftest import KEY, REWARDS, make_server

GUESS = str(ROOT / "examples" / "environments" / "guess_number.py")
DESK = str(ROOT / "examples" / "environments" / "support_desk.py")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with make_server(targets=(REWARDS, GUESS, DESK)) as live:
        yield live


def is_closed(url: str, env: str, session_id: str) -> bool:
    with EnvClient(url, auth=KEY, max_retries=0) as client:
        try:
            client._send(_env_core.state_request(env, session_id))
        except RewardKitError as error:
            return error.status in (404, 410)  # gone; or never this key's
    return False


def test_the_tools_become_methods_trl_can_describe(server: LiveServer) -> None:
    require_integration(modules=("transformers",))
    from transformers.utils import get_json_schema

    Desk = remote_environment(server.url, "support_desk", auth=KEY)
    assert issubclass(Desk, RemoteEnvironment)
    assert Desk.__name__ == "SupportDeskEnvironment"
    public = {n for n, _ in inspect.getmembers(Desk, inspect.isfunction) if n[0] != "_"}
    assert public == {"reset", "get_reward", "find_customer", "list_orders", "refund"}
    schema = get_json_schema(Desk().refund)["function"]
    assert schema["name"] == "refund"
    assert schema["parameters"]["required"] == ["order_id"]
    assert schema["parameters"]["properties"]["order_id"]["type"] == "string"
    assert "cannot be undone" in schema["description"]


def test_the_class_pickles_as_data_and_plays_an_episode(server: LiveServer) -> None:
    Guess = remote_environment(server.url, "guess_number", auth=KEY)
    Copy = pickle.loads(pickle.dumps(Guess))
    assert Copy is Guess  # the same process: the same class, not a second one
    env = Copy()
    observation = env.reset(prompt=[{"role": "user", "content": "play"}], seed=3)
    assert "integer from 1 to 100" in observation
    session_id = env._session.session_id  # type: ignore[union-attr]
    low, high, answer = 1, 100, ""
    while answer != "correct":
        middle = (low + high) // 2
        answer = env.guess(n=middle)  # type: ignore[attr-defined]
        low, high = (middle + 1, high) if answer == "higher" else (low, middle - 1)
    assert env.done
    assert env.rewards[-1] == 1.0
    assert "episode is over" in env.guess(n=1)  # type: ignore[attr-defined]
    assert env.get_reward() == pytest.approx(sum(env.rewards))
    assert is_closed(server.url, "guess_number", session_id)


CHILD = """
import pickle, sys
Env = pickle.loads(sys.stdin.buffer.read())
env = Env()
env.reset(prompt="play", seed=3)
low, high, answer = 1, 100, ""
while answer != "correct":
    middle = (low + high) // 2
    answer = env.guess(n=middle)
    low, high = (middle + 1, high) if answer == "higher" else (low, middle - 1)
print(type(env).__name__, env.get_reward() > 0, env._session is None)
"""


def test_another_process_rebuilds_the_class_from_its_pickle(server: LiveServer) -> None:
    # AsyncGRPO pickles the factory into its rollout process: no request is needed to rebuild
    # the class there, and the copy opens its own connections.
    Guess = remote_environment(server.url, "guess_number", auth=KEY)
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=pickle.dumps(Guess),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["GuessNumberEnvironment", "True", "True"]


def test_reset_closes_the_previous_session_and_groups_share_a_start(server: LiveServer) -> None:
    Desk = remote_environment(server.url, "support_desk", auth=KEY)
    first, second = Desk(), Desk()
    row = {"prompt": [{"role": "user", "content": "help the customer"}]}
    assert first.reset(**row) == second.reset(**row)  # one GRPO group: one start
    old = first._session.session_id  # type: ignore[union-attr]
    other = first.reset(prompt=[{"role": "user", "content": "another prompt"}])
    assert is_closed(server.url, "support_desk", old)  # a pooled instance reused: no leak
    assert other != second._session.observation  # type: ignore[union-attr]
    for env in (first, second):
        assert env.get_reward() == 0.0  # nothing refunded: no reward, yet a valid score
    with pytest.raises(RuntimeError, match="before reset"):
        first.get_reward()


def test_tool_names_that_would_break_the_protocol_are_refused() -> None:
    for name in ("reset", "get_reward", "_private", "not-a-name", "class"):
        with pytest.raises(ConfigurationError, match="tools"):
            _trl_env._function_of({"type": "function", "function": {"name": name}})


@pytest.mark.trl
@pytest.mark.slow
@pytest.mark.filterwarnings(r"ignore:`(is_)?gradient_checkpointing` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore:You are using 'environment_factory':UserWarning")
def test_one_grpo_step_against_the_remote_environment_leaks_no_session(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_integration(modules=("trl",), reason="needs reward-kit[trl] and torch==2.13.0")
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_chat_template

    spec = importlib.util.spec_from_file_location(
        "rk_tiny_model", ROOT / "examples" / "trl_grpo" / "tiny_model.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model_dir = module.build_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = qwen3_chat_template  # a template TRL can parse tool calls from

    Guess = remote_environment(server.url, "guess_number", auth=KEY)
    opened: list[str] = []

    class Recording(Guess):  # type: ignore[misc, valid-type]
        def reset(self, **row: Any) -> str:
            observation = super().reset(**row)
            opened.append(self._session.session_id)  # type: ignore[union-attr]
            return observation

    prompts = [[{"role": "user", "content": f"game {i}"}] for i in range(4)]
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=str(model_dir),
        processing_class=tokenizer,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        environment_factory=Recording,
    )
    trainer.train()

    assert len(opened) == 4  # one session per rollout
    logged = [e for e in trainer.state.log_history if "rewards/Recording/mean" in e]
    assert logged, trainer.state.log_history  # get_reward reached TRL as a reward column
    assert all(is_closed(server.url, "guess_number", s) for s in opened)
