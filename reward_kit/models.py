"""Upstream reward-kit 0.4's ``reward_kit.models``: the same classes as ``reward_kit``'s.

>>> from reward_kit.models import EvaluateResult, Message, MetricResult
"""

from ._models import EvaluateResult, FunctionCall, Message, MetricResult, StepOutput, ToolCall

__all__ = ["EvaluateResult", "FunctionCall", "Message", "MetricResult", "StepOutput", "ToolCall"]
