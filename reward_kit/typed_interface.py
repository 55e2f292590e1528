"""Upstream reward-kit 0.4's ``reward_kit.typed_interface``: its ``reward_function`` decorator.

It makes the same :class:`reward_kit.RewardFunction` as ``reward_kit.reward_function`` does, and
keeps upstream's contract on top: the function must take ``**kwargs`` (checked when it is
decorated), and bad input or output raises ``ValueError`` in upstream's words. Code written
against this path therefore also runs on upstream reward-kit and eval-protocol.

>>> from reward_kit.typed_interface import reward_function
>>> @reward_function
... def short(messages, **kwargs):
...     return {"score": float(len(messages[-1]["content"]) < 10)}
>>> short([{"role": "assistant", "content": "ok"}]).score
1.0
"""

from ._compat import EvaluationMode
from ._compat import upstream_reward_function as reward_function

__all__ = ["EvaluationMode", "reward_function"]
