"""Upstream reward-kit 0.4's ``reward_kit.agent`` package, for its data models only
(:mod:`reward_kit.agent.models`); upstream's agent-evaluation framework is not part of
reward-kit."""

__all__: list[str] = []
