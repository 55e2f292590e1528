"""A reward function over an environment session: it reads the session's final state and tool
ledger (what actually happened), not only the transcript."""

from reward_kit import EvaluateResult, reward_function


@reward_function(isolation="thread", timeout=10)
def solved_within(messages, ground_truth=None, env_state=None, tool_ledger=None, label="", **kw):
    """1.0 when the hidden number was found within ``ground_truth`` guesses."""
    guesses = [entry for entry in tool_ledger or [] if entry["name"] == "guess"]
    solved = bool(env_state and env_state.get("solved"))
    ok = solved and len(guesses) <= int(ground_truth)
    return EvaluateResult(score=float(ok), reason=f"{label}: {len(guesses)} guesses")
