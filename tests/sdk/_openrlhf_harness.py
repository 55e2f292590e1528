"""OpenRLHF's own reward code (the PyPI wheel, installed without its GPU dependencies by the
Makefile), driven as its rollout workers drive it, with only the model side replaced.

What runs unmodified: ``openrlhf.utils.agent.SingleTurnAgentExecutor`` (loading a ``.py``
reward_func, the aiohttp remote-RM client with its retries, the ``reward=None`` on failure),
``SamplesGenerator._process_response_into_experience`` (a response's rewards and extra_logs
into an ``Experience``), and the batch code of ``openrlhf.trainer.ppo_utils.experience``
(``Experience.concat_experiences``, ``split_experience_batch``, ``make_experience_batch``).

What is replaced: the vLLM engine (:class:`ScriptedEngine` returns a fixed response per
prompt) and the Hugging Face tokenizer (:class:`CharTokenizer`, one token per character). To
import ``samples_generator`` at all, ``ray``, ``vllm`` and ``openrlhf.trainer.ray`` (which
import CUDA libraries) are placeholder modules during that one import and removed after it;
the method used from it touches none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import types
from collections.abc import Iterator, Sequence
from typing import Any

from ..conftest import require_integration

VERSION = "0.11.2"


def require_openrlhf() -> None:
    require_integration(
        modules=("openrlhf", "aiohttp", "torch"),
        reason=f"needs openrlhf=={VERSION} (installed --no-deps by `make` dev installs), "
        "aiohttp and torch",
    )


@contextlib.contextmanager
def _placeholders(*names: str) -> Iterator[None]:
    added = [name for name in names if name not in sys.modules]
    for name in added:
        module = types.ModuleType(name)
        module.SamplingParams = object  # type: ignore[attr-defined]  # vllm's, unused here
        module.batch_vllm_engine_call = None  # type: ignore[attr-defined]
        sys.modules[name] = module
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def openrlhf() -> types.SimpleNamespace:
    """The OpenRLHF modules the tests drive (imported once; later calls reuse them)."""
    require_openrlhf()
    from openrlhf.trainer.ppo_utils import experience
    from openrlhf.utils import agent

    if "openrlhf.trainer.ppo_utils.samples_generator" not in sys.modules:
        with _placeholders(
            "ray", "vllm", "openrlhf.trainer.ray", "openrlhf.trainer.ray.vllm_engine"
        ):
            from openrlhf.trainer.ppo_utils import samples_generator  # noqa: F401
    samples = sys.modules["openrlhf.trainer.ppo_utils.samples_generator"]
    return types.SimpleNamespace(agent=agent, experience=experience, samples=samples)


class CharTokenizer:
    """The two calls OpenRLHF's executor makes on a Hugging Face tokenizer."""

    pad_token_id = 0

    def __call__(self, *, text: str, add_special_tokens: bool, return_tensors: str) -> Any:
        import torch

        return {"input_ids": torch.tensor([[ord(c) for c in text]])}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i) for i in ids)


class ScriptedEngine:
    """vLLM's ``generate`` as the executor awaits it: a fixed response per prompt."""

    def __init__(self, responses: dict[str, str]) -> None:
        self.responses = responses

    async def generate(
        self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None
    ) -> Any:
        text = self.responses["".join(chr(i) for i in prompt_token_ids)]
        output = types.SimpleNamespace(
            token_ids=[ord(c) for c in text], text=text, finish_reason="stop", logprobs=None
        )
        return types.SimpleNamespace(outputs=[output])


def rollout(remote_url: str, samples: Sequence[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    """Run OpenRLHF's single-turn executor on ``(prompt, response, label)`` samples, all at once
    as its rollout workers do; one output dict per sample, in order."""
    executor = openrlhf().agent.SingleTurnAgentExecutor(remote_rm_url=remote_url)
    engine = ScriptedEngine({prompt: response for prompt, response, _ in samples})
    params = types.SimpleNamespace(max_tokens=256, logprobs=None)

    async def run_all() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(
                executor.execute(prompt, label, params, 1024, CharTokenizer(), engine)
                for prompt, _, label in samples
            )
        )

    try:
        return asyncio.run(run_all())
    finally:
        # OpenRLHF never closes what a reward_func file opened; a test must, or its sockets
        # are reported unclosed.
        reward = executor.reward_func.__globals__.get("_reward") if executor.reward_func else None
        if reward is not None:
            reward.close()


def experiences(outputs: Sequence[dict[str, Any]]) -> list[Any]:
    """Each output as OpenRLHF's SamplesGenerator turns it into an ``Experience``."""
    module = openrlhf().samples
    generator = module.SamplesGenerator.__new__(module.SamplesGenerator)  # no vLLM, no Ray
    return [generator._process_response_into_experience(out, max_len=1024) for out in outputs]


def train_batch(outputs: Sequence[dict[str, Any]]) -> Any:
    """What OpenRLHF does to a batch's samples on the way to the optimizer: concatenate them
    (RemoteExperienceMaker.split_rollout_samples), split and rebatch them (NaiveReplayBuffer's
    append and collate_fn). Raises what OpenRLHF raises."""
    exp = openrlhf().experience
    batch = exp.Experience.concat_experiences(experiences(outputs), CharTokenizer.pad_token_id)
    items = exp.remove_padding_in_sequences(exp.split_experience_batch(batch))
    return exp.make_experience_batch(items)


def logged(batch: Any, key: str) -> list[float]:
    """The per-sample values of ``batch.info[key]`` as PolicyActor hands them to its logger
    (openrlhf/trainer/ray/ppo_actor.py, which needs deepspeed to import): a tensor as it is,
    a list through ``torch.tensor(v, dtype=torch.float)``."""
    import torch

    value = batch.info[key]
    if isinstance(value, list):
        value = torch.tensor(value, dtype=torch.float)
    return [float(v) for v in value.flatten()]
