"""Built-in reward functions. Each is a ``@reward_function``: call it in-process, serve it with
``rk-serve reward_kit.rewards:<name>``, or use it with ``rk eval``.

>>> from reward_kit.rewards import gsm8k_reward
>>> gsm8k_reward([{"role": "assistant", "content": "#### 42"}], ground_truth="42").score
1.0

Heavy dependencies are extras: ``reward-kit[math]`` (math-verify), ``[structure]``
(jsonschema), ``[text]`` (rapidfuzz, sacrebleu, rouge-score), ``[code]`` (HumanEval data);
code execution needs bubblewrap installed (see docs/rewards.md).
"""

from .code import code_execution_reward, humaneval_problems, humaneval_reward
from .combine import combine
from .format import (
    cosine_length_reward,
    format_reward,
    length_reward,
    reasoning_steps_reward,
    repetition_penalty_reward,
    tag_count_reward,
)
from .judge import llm_judge, llm_judge_reward
from .math import (
    gsm8k_reward,
    list_comparison_reward,
    math_verify_reward,
    multiple_choice_reward,
)
from .structure import json_schema_reward, tool_call_reward
from .text import string_check_reward, text_similarity_reward

__all__ = [
    "code_execution_reward",
    "combine",
    "cosine_length_reward",
    "format_reward",
    "gsm8k_reward",
    "humaneval_problems",
    "humaneval_reward",
    "json_schema_reward",
    "length_reward",
    "list_comparison_reward",
    "llm_judge",
    "llm_judge_reward",
    "math_verify_reward",
    "multiple_choice_reward",
    "reasoning_steps_reward",
    "repetition_penalty_reward",
    "string_check_reward",
    "tag_count_reward",
    "text_similarity_reward",
    "tool_call_reward",
]
