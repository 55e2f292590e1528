"""verl's own reward code, unmodified (verl 0.9.1 from PyPI, installed --no-deps with ray,
tensordict, omegaconf and codetiming), driving reward-kit's compute_score against a real
evaluator.

What runs is verl's: ``get_custom_reward_fn`` loading examples/verl/reward.py from its path,
the legacy ``NaiveRewardManager`` (with its SIGALRM ``compute_score_timeout``) and
``BatchRewardManager`` over a real ``DataProto``, and the reward loop's ``RewardLoopWorker``
(verl 0.7+'s default path, called directly instead of as a Ray actor) with the reward-model
router enabled. The tokenizer is a real transformers tokenizer built here (no model hub).
Nothing of verl is stubbed.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward_kit import EvaluationError, EvaluationTimeout, FunctionError
from reward_kit.sdk import EvaluatorClient
from reward_kit.sdk.verl import batch_compute_score_fn, compute_score_fn

from ..conftest import FIXTURES, ROOT, LiveServer, metric, require_integration, rk_serve
from ._verl_harness import VERL_REWARDS, byte_tokenizer, data_proto, final_rewards
from .conftest import KEY, CountingTransport, make_server

EXAMPLE = str(ROOT / "examples" / "verl" / "reward.py")


@pytest.fixture(scope="module", autouse=True)
def _verl() -> None:
    require_integration(
        modules=("verl", "ray", "tensordict", "omegaconf"),
        reason="needs verl==0.9.1 (--no-deps), ray, tensordict and omegaconf (make installs them)",
    )
    with warnings.catch_warnings():
        # verl imports ray.experimental.state, which Ray deprecates; not ours to fix.
        warnings.filterwarnings("ignore", "Ray state API", DeprecationWarning)
        import verl.experimental.reward_loop.reward_loop
        import verl.workers.reward_manager  # noqa: F401


@pytest.fixture(scope="module")
def verl_server() -> Iterator[LiveServer]:
    with make_server(targets=(VERL_REWARDS,)) as live:
        yield live


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return byte_tokenizer()


def verl_config(name: str = "compute_score", **reward: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": EXAMPLE,
                    "name": name,
                    "reward_kwargs": reward.pop("reward_kwargs", {}),
                },
                "reward_manager": {"source": "register", "name": "naive"},
                **reward,
            }
        }
    )


@pytest.fixture
def example_env(verl_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """What examples/verl/reward.py reads when verl loads it."""
    monkeypatch.setenv("RK_URL", verl_server.url)
    monkeypatch.setenv("RK_FUNCTION", "judge")
    monkeypatch.setenv("RK_API_KEY", KEY)
    return monkeypatch


@pytest.fixture
def loaded(example_env: pytest.MonkeyPatch) -> Iterator[Any]:
    """``loaded(name, **reward)``: the reward function exactly as verl's trainer gets it from
    its config (examples/verl/reward.py, loaded by path). Closed after the test."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    made: list[Any] = []

    def load(name: str = "compute_score", **reward: Any) -> Any:
        fn = get_custom_reward_fn(verl_config(name, **reward))
        made.append(fn.args[0])  # verl's partial(_call_with_kwargs, raw_fn, reward_kwargs)
        return fn

    yield load
    for raw in made:
        raw.close()


SAMPLES = [
    {"response": "4", "ground_truth": "4"},
    {"response": "five", "ground_truth": "5"},
    {"response": "6", "ground_truth": "6"},
]


def test_naive_manager_scores_through_verls_loader(tokenizer: Any, loaded: Any) -> None:
    from verl.workers.reward_manager import NaiveRewardManager

    manager = NaiveRewardManager(tokenizer, num_examine=0, compute_score=loaded())
    data = data_proto(tokenizer, SAMPLES)
    out = manager(data, return_dict=True)
    assert final_rewards(out["reward_tensor"], data) == [1.0, 0.0, 1.0]
    assert dict(out["reward_extra_info"]) == {
        "score": [1.0, 0.0, 1.0],
        "exact": [1.0, 0.0, 1.0],
        "length": [1.0, 0.0, 1.0],  # "five" returned none: the declared key is filled
    }


def test_naive_manager_failing_sample_raises_or_takes_the_fallback(
    tokenizer: Any, example_env: pytest.MonkeyPatch, loaded: Any
) -> None:
    from verl.workers.reward_manager import NaiveRewardManager

    samples = [*SAMPLES[:1], {"response": "x", "ground_truth": "raise"}, *SAMPLES[2:]]
    data = data_proto(tokenizer, samples)
    strict = NaiveRewardManager(tokenizer, num_examine=0, compute_score=loaded())
    with pytest.raises(FunctionError, match="asked to fail"):  # verl catches nothing: loud
        strict(data, return_dict=True)
    example_env.setenv("RK_ON_ERROR", "-1")
    lenient = NaiveRewardManager(tokenizer, num_examine=0, compute_score=loaded())
    out = lenient(data_proto(tokenizer, samples), return_dict=True)
    assert final_rewards(out["reward_tensor"], data) == [1.0, -1.0, 1.0]
    info = out["reward_extra_info"]
    assert info["reward_kit_failed"] == [0.0, 1.0, 0.0]
    assert {len(values) for values in info.values()} == {3}  # verl's lists stay aligned


@pytest.mark.parametrize("on_error", ["raise", -1.0])
def test_naive_manager_compute_score_timeout_is_verls(
    tokenizer: Any, verl_server: LiveServer, on_error: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from verl.workers.reward_manager import NaiveRewardManager

    transport = CountingTransport()
    client = EvaluatorClient(verl_server.url, auth=KEY, transport=transport, max_retries=5)
    score = compute_score_fn(client, function="judge", on_error=on_error)
    manager = NaiveRewardManager(
        tokenizer, num_examine=0, compute_score=score, compute_score_timeout=0.5
    )
    samples = [SAMPLES[0], {"response": "1", "ground_truth": "sleep:2"}, SAMPLES[2]]
    data = data_proto(tokenizer, samples)
    out = manager(data, return_dict=True)
    # One request per sample: the timed-out one was not retried past verl's deadline.
    assert transport.paths.count("/evaluate/judge") == 3
    printed = "compute_score exceeded 0.5s" in capsys.readouterr().out
    if on_error == "raise":  # verl caught its own TimeoutError and scored the sample 0.0
        assert printed
        assert final_rewards(out["reward_tensor"], data) == [1.0, 0.0, 1.0]
    else:  # the fallback, flagged, with every key verl lists
        assert not printed
        assert final_rewards(out["reward_tensor"], data) == [1.0, -1.0, 1.0]
        assert out["reward_extra_info"]["reward_kit_failed"] == [0.0, 1.0, 0.0]
        assert {len(v) for v in out["reward_extra_info"].values()} == {3}
    score.close()


@pytest.mark.parametrize("on_error", ["raise", -1.0])
def test_naive_manager_does_not_take_a_server_timeout_for_its_own(
    tokenizer: Any, verl_server: LiveServer, on_error: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # verl catches every TimeoutError as its compute_score_timeout and scores the sample 0.0:
    # the server's reward timeout must not be one, or an evaluator failure trains as a 0.0.
    from verl.workers.reward_manager import NaiveRewardManager

    score = compute_score_fn(verl_server.url, function="brief", auth=KEY, on_error=on_error)
    manager = NaiveRewardManager(tokenizer, num_examine=0, compute_score=score)
    samples = [SAMPLES[0], {"response": "1", "ground_truth": "sleep:2"}]
    data = data_proto(tokenizer, samples)
    if on_error == "raise":
        with pytest.raises(EvaluationError, match="evaluator timed out") as raised:
            manager(data, return_dict=True)
        assert not isinstance(raised.value, TimeoutError)
        assert isinstance(raised.value.__cause__, EvaluationTimeout)
    else:
        out = manager(data, return_dict=True)
        assert final_rewards(out["reward_tensor"], data) == [1.0, -1.0]
        assert out["reward_extra_info"]["reward_kit_failed"] == [0.0, 1.0]
    assert "compute_score exceeded" not in capsys.readouterr().out
    score.close()


def test_batch_manager_one_request_per_batch(tokenizer: Any, verl_server: LiveServer) -> None:
    from omegaconf import OmegaConf
    from verl.workers.reward_manager import BatchRewardManager

    transport = CountingTransport()
    client = EvaluatorClient(verl_server.url, auth=KEY, transport=transport)
    score = batch_compute_score_fn(client, function="judge")
    # verl <= 0.6 builds it with **config.reward_model.reward_kwargs: OmegaConf values.
    reward_kwargs = OmegaConf.create({"weights": [1, 2]})
    manager = BatchRewardManager(tokenizer, 0, score, "data_source", **reward_kwargs)
    data = data_proto(tokenizer, SAMPLES)
    out = manager(data, return_dict=True)
    assert final_rewards(out["reward_tensor"], data) == [1.0, 0.0, 1.0]
    assert data.batch["acc"].tolist() == [1.0, 0.0, 1.0]
    assert dict(out["reward_extra_info"])["length"] == [1.0, 0.0, 1.0]
    assert transport.paths == ["/functions", "/batch_evaluate"]
    score.close()


def test_batch_manager_through_verls_loader_raises_or_falls_back(
    tokenizer: Any, example_env: pytest.MonkeyPatch, loaded: Any
) -> None:
    from verl.workers.reward_manager import BatchRewardManager

    samples = [SAMPLES[0], {"response": "x", "ground_truth": "raise"}, SAMPLES[2]]
    fn = loaded("compute_score_batch", reward_kwargs={"scale": 2})
    strict = BatchRewardManager(tokenizer, 0, fn, "data_source")
    with pytest.raises(FunctionError, match="sample 1 of 3"):
        strict(data_proto(tokenizer, samples), return_dict=True)
    example_env.setenv("RK_ON_ERROR", "0")
    fn = loaded("compute_score_batch", reward_kwargs={"scale": 2})
    lenient = BatchRewardManager(tokenizer, 0, fn, "data_source")
    data = data_proto(tokenizer, samples)
    out = lenient(data, return_dict=True)
    assert final_rewards(out["reward_tensor"], data) == [1.0, 0.0, 1.0]
    assert out["reward_extra_info"]["reward_kit_failed"] == [0.0, 1.0, 0.0]
    assert {len(v) for v in out["reward_extra_info"].values()} == {3}


def test_reward_loop_with_the_router_enabled_leaves_verls_arguments_out(
    tokenizer: Any, example_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """verl 0.7+'s default path: the reward loop worker, with a reward model enabled, passes
    ``reward_router_address`` and the reward model's tokenizer to every call."""
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    tokenizer.save_pretrained(tmp_path)  # verl loads both tokenizers from a model path
    config = verl_config(reward_kwargs={"scale": 2}, reward_model={"enable": True})
    config.reward.reward_model.model_path = str(tmp_path)
    config.actor_rollout_ref = OmegaConf.create({"model": {"path": str(tmp_path)}})
    config.actor_rollout_ref.model.tokenizer_path = None

    async def score_batch() -> list[dict[str, Any]]:
        worker = RewardLoopWorker(config, reward_router_address="127.0.0.1:1")
        assert type(worker.reward_model_tokenizer).__name__ == type(tokenizer).__name__
        try:
            outputs: list[dict[str, Any]] = await worker.compute_score_batch(
                data_proto(tokenizer, SAMPLES)
            )
        finally:
            worker.reward_manager.compute_score.args[0].close()  # the example's object
        return outputs

    outputs = asyncio.run(score_batch())
    assert [o["reward_score"] for o in outputs] == [1.0, 0.0, 1.0]
    # verl's RewardLoopManager lists every key of the first sample for all: all the same.
    assert {tuple(o["reward_extra_info"]) for o in outputs} == {("score", "exact", "length")}


def test_reward_loop_load_at_verls_default_concurrency(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """verl's RewardLoopWorker scoring 256 samples with the example's compute_score, its
    executor sized as a large node's reward loop (8 workers x 32 threads: 256 one-sample
    calls at once), against ``rk-serve`` at its default settings (process workers, 64 in
    flight). Every sample gets its score, and the burst waits in the server's queue rather
    than being refused."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    tokenizer.save_pretrained(tmp_path)
    config = verl_config(reward_model={"enable": False})
    config.actor_rollout_ref = OmegaConf.create({"model": {"path": str(tmp_path)}})
    config.actor_rollout_ref.model.tokenizer_path = None
    samples = [{"response": str(i), "ground_truth": str(i)} for i in range(256)]

    async def score_batch() -> list[dict[str, Any]]:
        # verl runs compute_score with run_in_executor(None, ...): the loop's default executor.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(256))
        worker = RewardLoopWorker(config)
        try:
            outputs: list[dict[str, Any]] = await worker.compute_score_batch(
                data_proto(tokenizer, samples)
            )
        finally:
            worker.reward_manager.compute_score.args[0].close()
        return outputs

    with rk_serve(str(FIXTURES / "load_rewards.py")) as url:
        monkeypatch.setenv("RK_URL", url)
        monkeypatch.setenv("RK_FUNCTION", "fifty_ms")
        monkeypatch.delenv("RK_API_KEY", raising=False)
        outputs = asyncio.run(score_batch())
        metrics = httpx.get(f"{url}/metrics").text
    assert [o["reward_score"] for o in outputs] == [1.0] * 256
    refused = [
        line
        for line in metrics.splitlines()
        if line.startswith("rk_requests_total{") and 'status="429"' in line
    ]
    assert not refused  # no 429: the client did not have to retry
    assert metric(metrics, "rk_queue_wait_seconds_count") > 0  # the burst was queued
