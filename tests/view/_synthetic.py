"""Run directories in rk run's exact output format (docs/run.md), generated small and seeded:
for the viewer's tests, its benchmark (bench/bench_view.py) and its screenshots
(bench/view_screenshots.py).

Every line has what ``rk run`` writes: prompt id, sample index, seed, messages, response,
ground truth, generation (status, finish reason, usage, cached, attempts) and one entry per
reward (score, is_score_valid, reason, metrics, status). Some samples fail on purpose: a
generation timeout (its rewards ``skipped``), a reward ``timeout`` and a reward ``error``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

__all__ = ["HOSTILE", "write_eval_file", "write_run"]

# A response that would run script if the page ever parsed results as HTML.
HOSTILE = (
    '<script>window.__rkInjected = 1</script><img src=x onerror="window.__rkInjected = 2">'
    "</script><b>bold?</b> **real bold** `<i>code</i>`"
)

_ANSWERS = ["42", "7", "12", "100", "3"]


def _response(rng: random.Random, answer: str, correct: bool, index: int) -> str:
    if index % 3 == 0:
        return (
            f"Let me work it out.\n\n```python\nprint({answer if correct else '0'})\n```\n\n"
            f"The answer is **{answer if correct else rng.choice(['0', '1', '99'])}**."
        )
    return answer if correct else rng.choice(["0", "1", "99", "I don't know"])


def _line(
    rng: random.Random, prompt: int, sample: int, skill: float, *, hostile: bool
) -> dict[str, Any]:
    prompt_id = f"p{prompt:05d}"
    answer = _ANSWERS[prompt % len(_ANSWERS)]
    question = f"What is question {prompt}? Reply with the number."
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": question},
    ]
    line: dict[str, Any] = {
        "prompt_id": prompt_id,
        "sample_index": sample,
        "seed": rng.randrange(2**31),
        "messages": messages,
        "ground_truth": answer,
    }
    difficulty = (prompt * 7919 % 100) / 100
    correct = rng.random() < skill * (1.2 - difficulty)
    if prompt % 97 == 5 and sample == 0:
        line["response"] = None
        line["generation"] = {
            "status": "timeout", "finish_reason": None, "usage": None, "cached": False,
            "attempts": 6, "error": "no answer within 120 s (6 attempts)",
        }  # fmt: skip
        line["rewards"] = {
            name: {"score": None, "is_score_valid": False, "reason": "generation failed",
                   "metrics": {}, "status": "skipped"}
            for name in ("exact_match", "brevity")
        }  # fmt: skip
        return line
    response = HOSTILE if hostile else _response(rng, answer, correct, prompt + sample)
    tokens = max(1, len(response) // 4)
    line["response"] = response
    line["generation"] = {
        "status": "ok", "finish_reason": "stop" if tokens < 60 else "length",
        "usage": {"prompt_tokens": 20, "completion_tokens": tokens, "total_tokens": 20 + tokens},
        "cached": rng.random() < 0.3, "attempts": 1 + (rng.random() < 0.05),
    }  # fmt: skip
    if prompt % 5 == 1 and sample == 0:
        line["generation"]["tool_calls"] = [
            {"id": "call_1", "type": "function",
             "function": {"name": "calculator", "arguments": json.dumps({"expr": "6*7"})}}
        ]  # fmt: skip
    exact: dict[str, Any] = {
        "score": 1.0 if correct and not hostile else 0.0, "is_score_valid": True,
        "reason": "matches the ground truth" if correct else f"expected {answer}",
        "metrics": {"parsed": {"score": 1.0 if response.strip() else 0.0, "reason": "a number"}},
        "status": "ok",
    }  # fmt: skip
    if prompt % 89 == 3 and sample == 1:
        exact = {
            "score": None, "is_score_valid": False, "reason": None, "metrics": {},
            "status": "timeout", "error": {"code": "timeout", "message": "over 30 s"},
        }  # fmt: skip
    if prompt % 83 == 2 and sample == 0:
        exact = {"score": None, "is_score_valid": False, "reason": None, "metrics": {},
                 "status": "error", "error": {"code": "reward_error",
                                              "message": "ValueError: cannot parse"}}  # fmt: skip
    length = min(1.0, 8 / max(8, len(response)))
    line["rewards"] = {
        "exact_match": exact,
        "brevity": {"score": round(length, 4), "is_score_valid": True,
                    "reason": f"{len(response)} chars",
                    "metrics": {"chars": {"score": float(len(response)), "reason": ""}},
                    "status": "ok"},
    }  # fmt: skip
    return line


def _with_env(line: dict[str, Any]) -> dict[str, Any]:
    """The line as ``rk run --env`` writes it: the rollout's turns, step rewards, state."""
    answer = line["ground_truth"]
    turns: list[dict[str, Any]] = []
    for step, expr in enumerate(("6*7", f"{answer}+0")):
        call = {
            "id": f"call_{step}",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expr": expr})},
        }
        turns += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{step}", "content": f"result {step}"},
        ]  # fmt: skip
    turns.append({"role": "assistant", "content": f"Done: {answer}"})
    line["response"] = f"Done: {answer}"
    line["env"] = {
        "name": "calculator_env", "session_id": "s-1", "status": "done", "steps": 2,
        "step_rewards": [0.25, 1.0], "done": True, "turns": turns,
    }  # fmt: skip
    return line


def write_run(
    out: Path,
    *,
    prompts: int = 30,
    samples: int = 4,
    skill: float = 0.6,
    seed: int = 0,
    model: str = "model-a",
    hostile_prompt: int | None = None,
    env_prompt: int | None = None,
    summary: bool = True,
) -> Path:
    """A run directory with ``prompts`` x ``samples`` lines; the sample 0 of
    ``hostile_prompt`` answers :data:`HOSTILE`; ``env_prompt``'s samples are environment
    rollouts (two tool steps with their rewards)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        _line(rng, p, s, skill, hostile=p == hostile_prompt and s == 0)
        for p in range(prompts)
        for s in range(samples)
    ]
    lines = [
        _with_env(line) if line["prompt_id"] == f"p{env_prompt:05d}" and line["response"] else line
        for line in lines
    ] if env_prompt is not None else lines  # fmt: skip
    with (out / "results.jsonl").open("w") as file:
        for line in lines:
            file.write(json.dumps(line) + "\n")
    ks = [k for k in (1, 2, 4, 8, 16) if k <= samples]
    if summary:
        (out / "summary.json").write_text(json.dumps(_summary(lines, ks, prompts)))
    manifest = {
        "config": {"model": {"name": model, "base_url": "http://127.0.0.1:8000/v1",
                             "temperature": 0.8}, "samples": samples, "seed": seed, "k": ks},
        "endpoint": "http://127.0.0.1:8000/v1",
        "dataset": {"path": "prompts.jsonl", "sha256": "ab" * 32},
        "rewards": {"exact_match": {"function_sha256": "cd" * 32, "file_sha256": "ef" * 32}},
        "versions": {"reward-kit": "test", "python": "3.11"},
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _summary(lines: list[dict[str, Any]], ks: list[int], prompts: int) -> dict[str, Any]:
    """summary.json's shape, with simple (not rk run's) statistics: the viewer shows them."""
    rewards: dict[str, Any] = {}
    for name in ("exact_match", "brevity"):
        scores = [line["rewards"][name]["score"] for line in lines
                  if line["rewards"][name]["status"] == "ok"]  # fmt: skip
        mean = sum(scores) / len(scores)
        statuses: dict[str, int] = {}
        for line in lines:
            status = line["rewards"][name]["status"]
            statuses[status] = statuses.get(status, 0) + 1
        rewards[name] = {
            "mean": mean, "ci": [mean - 0.05, mean + 0.05], "count": len(scores),
            "pass_threshold": 1.0,
            "pass_at_k": {str(k): min(1.0, mean * (1 + 0.3 * (k - 1))) for k in ks},
            "pass_hat_k": {str(k): mean**k for k in ks},
            "statuses": statuses, "metrics": {"parsed": 0.9},
        }  # fmt: skip
    return {
        "samples": len(lines), "prompts": prompts, "rewards": rewards,
        "generation": {"requests": len(lines), "cache_hits": 0, "errors": 1,
                       "prompt_tokens": 20 * len(lines), "completion_tokens": 5 * len(lines),
                       "statuses": {"ok": len(lines) - 1, "timeout": 1}, "identical_groups": 0},
        "wall_s": 12.5,
    }  # fmt: skip


def write_eval_file(path: Path, *, rows: int = 10) -> Path:
    """An rk eval results file (``{line, function, index, status, result, error,
    duration_ms}`` per row), one row a timeout."""
    with path.open("w") as file:
        for index in range(rows):
            timed_out = index == 3
            record = {
                "line": index + 1, "function": "exact_match", "index": index,
                "status": "timeout" if timed_out else "ok",
                "result": None if timed_out else {"score": float(index % 2), "is_score_valid": True,
                                                  "reason": "ok", "metrics": {}},
                "error": {"code": "timeout", "message": "over 1 s"} if timed_out else None,
                "duration_ms": 1.5,
            }  # fmt: skip
            file.write(json.dumps(record) + "\n")
    return path
