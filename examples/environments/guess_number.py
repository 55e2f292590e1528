"""A seeded puzzle: find a hidden number in [1, 100] with "higher"/"lower" hints.

Serve it with ``rk-serve examples/environments/guess_number.py``. The seed (or the GRPO group)
fixes the number, so every rollout of a group plays the same game. Binary search needs at most 7
guesses; ``max_steps`` allows 10, and each wrong guess costs a little, so the score ranks a
straight search above a lucky wander, and a game that runs out of guesses scores 0.
"""

from __future__ import annotations

import random

from reward_kit.env import Environment, ToolResult, tool

LOW, HIGH = 1, 100
WRONG_GUESS_COST = 0.05


class GuessNumber(Environment):
    """Guess a hidden integer from 1 to 100; each answer says higher or lower."""

    name = "guess_number"
    max_steps = 10
    step_timeout = 5

    def reset(self, *, task: object = None, seed: int | None = None) -> str:
        self.secret = random.Random(seed).randint(LOW, HIGH)
        self.guesses: list[int] = []
        self.solved = False
        return (
            f"I picked an integer from {LOW} to {HIGH}. Call guess(n) to try a number; "
            "I answer higher, lower or correct."
        )

    @tool
    def guess(self, n: int) -> ToolResult:
        """Guess the hidden number.

        Args:
            n: the integer to try, from 1 to 100.
        """
        if not LOW <= n <= HIGH:
            return ToolResult(content=f"{n} is outside {LOW}..{HIGH}", reward=-WRONG_GUESS_COST)
        self.guesses.append(n)
        if n == self.secret:
            self.solved = True
            return ToolResult(content="correct", reward=1.0, done=True)
        hint = "higher" if self.secret > n else "lower"
        return ToolResult(content=hint, reward=-WRONG_GUESS_COST)
