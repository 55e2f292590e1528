"""Upstream reward-kit 0.4 authoring code runs unchanged (docs/compat.md); the remote half of
the upstream RewardFunction class is in test_compat_remote.py."""

from __future__ import annotations

import logging
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, List, Optional  # noqa: UP035 - upstream's spelling is the point

import pytest

import reward_kit
from reward_kit import EvaluateResult, InvalidRequest, Message, MetricResult
from reward_kit.agent.models import StepData
from reward_kit.reward_function import RewardFunction
from reward_kit.typed_interface import reward_function as upstream_decorator

from .conftest import ROOT

CHAT = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


# -- Message reads like the dict upstream passed ------------------------------------------


def test_message_reads_like_the_dict_it_came_from() -> None:
    message = Message.model_validate(
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "because",
            "tool_calls": [{"id": "c1", "function": {"name": "add", "arguments": "{}"}}],
        }
    )
    assert message["role"] == "assistant"
    assert message["content"] is None  # given as null: present, as in the dict
    assert message["reasoning_content"] == "because"  # unknown fields too
    assert message["tool_calls"][0]["function"]["name"] == "add"  # nested, as dicts
    assert message.get("name") is None
    assert message.get("name", "x") == "x"
    assert "tool_calls" in message
    assert "name" not in message
    assert dict(message) == {
        "role": "assistant",
        "content": None,
        "tool_calls": message.tool_calls,
        "reasoning_content": "because",
    }
    with pytest.raises(KeyError):
        message["name"]


def test_a_text_message_has_the_keys_of_its_dict() -> None:
    message = Message(role="user", content="hi")
    assert list(message) == ["role", "content"]
    assert "tool_calls" not in message  # `if "tool_calls" in m: for tc in m["tool_calls"]`
    assert len(message) == 2
    assert Message(role="assistant")["content"] == ""  # the default, like upstream's Message


def test_message_dict_access_is_read_only() -> None:
    message = Message(role="user", content="hi")
    with pytest.raises(TypeError):
        message["content"] = "changed"  # type: ignore[index]


@pytest.mark.parametrize("decorator", [reward_kit.reward_function, upstream_decorator])
def test_unannotated_messages_can_be_used_as_dicts(decorator: Any) -> None:
    @decorator
    def exact(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
        last = messages[-1]
        assert last.get("role") == "assistant"
        return float(last["content"].strip() == ground_truth)

    assert exact(CHAT, "4").score == 1.0


# -- ground_truth annotated List[Message] ----------------------------------------------------


def _seen(fn: Any, truth: Any) -> Any:
    seen: list[Any] = []
    fn.__wrapped__.seen = seen
    fn(CHAT, truth)
    return seen[0]


def test_ground_truth_annotated_as_messages_gets_messages() -> None:
    @reward_kit.reward_function
    def typing_list(messages, ground_truth: List[Message], **kwargs):  # type: ignore[no-untyped-def]  # noqa: UP006
        typing_list.__wrapped__.seen.append(ground_truth)
        return 1.0

    @reward_kit.reward_function
    def optional(messages, ground_truth: Optional[list[Message]] = None):  # type: ignore[no-untyped-def]  # noqa: UP045
        optional.__wrapped__.seen.append(ground_truth)
        return 1.0

    @reward_kit.reward_function
    def text(messages, ground_truth: str | None = None):  # type: ignore[no-untyped-def]
        text.__wrapped__.seen.append(ground_truth)
        return 1.0

    truth = [{"role": "assistant", "content": "4"}]
    for fn in (typing_list, optional):
        got = _seen(fn, truth)
        assert [type(m) for m in got] == [Message]
        assert got[0].content == "4"
    assert _seen(optional, None) is None  # no ground truth stays None
    assert _seen(text, truth) == truth  # other annotations: untouched


def test_ground_truth_that_is_not_messages_names_the_field() -> None:
    @reward_kit.reward_function
    def needs(messages, ground_truth: List[Message], **kwargs):  # type: ignore[no-untyped-def]  # noqa: UP006
        return 1.0

    with pytest.raises(InvalidRequest, match=r"ground_truth\.0: Input should be a valid dict"):
        needs(CHAT, ["not a message"])
    with pytest.raises(InvalidRequest, match="ground_truth: expected a list of messages"):
        needs(CHAT, "4")


# -- **kwargs holds only what the caller gave ----------------------------------------------


def test_kwargs_get_no_ground_truth_the_caller_did_not_give() -> None:
    def helper(messages: Any, ground_truth: Any = None, **kwargs: Any) -> float:
        return 1.0 if ground_truth is None else 0.5

    @reward_kit.reward_function
    def forwards(messages, **kwargs):  # type: ignore[no-untyped-def]
        assert "ground_truth" not in kwargs
        return EvaluateResult(
            score=helper(messages, ground_truth="x", **kwargs), reason=str(kwargs)
        )

    result = forwards(CHAT, level=2)
    assert result.score == 0.5
    assert result.reason == "{'level': 2}"

    @reward_kit.reward_function
    def keeps(messages, **kwargs):  # type: ignore[no-untyped-def]
        return EvaluateResult(score=1.0, reason=repr(kwargs["ground_truth"]))

    assert keeps(CHAT, "4").reason == "'4'"  # given: passed on


# -- the upstream-path decorator ------------------------------------------------------------


def test_upstream_decorator_makes_a_reward_kit_function() -> None:
    @upstream_decorator(mode="pointwise", id="exact-v1", requirements=["sympy"])
    def exact(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
        return {"score": float(messages[-1]["content"] == ground_truth)}

    assert isinstance(exact, reward_kit.RewardFunction)  # served and loaded like any other
    assert exact.requirements == ("sympy",)
    assert exact._reward_function_id == "exact-v1"  # type: ignore[attr-defined]
    assert exact(CHAT, "4").score == 1.0


def test_upstream_decorator_requires_kwargs_but_reward_kits_does_not() -> None:
    def plain(messages, ground_truth=None):  # type: ignore[no-untyped-def]
        return 1.0

    with pytest.raises(ValueError, match=r"Function 'plain' must accept \*\*kwargs parameter"):
        upstream_decorator(plain)
    assert reward_kit.reward_function(plain)(CHAT).score == 1.0


def test_upstream_decorator_errors_are_value_errors_in_upstreams_words() -> None:
    @upstream_decorator
    def wrong(messages, **kwargs):  # type: ignore[no-untyped-def]
        return "0.5"

    with pytest.raises(InvalidRequest, match=r"^Input 'messages' failed Pydantic validation"):
        wrong([{"content": "no role"}])
    with pytest.raises(ValueError, match="Return value from function 'wrong' failed") as caught:
        wrong(CHAT)
    assert isinstance(caught.value, TypeError)  # what reward-kit's own decorator raises


def test_upstream_resources_are_set_up_once_and_injected() -> None:
    class Resource:
        setups = 0

        def setup(self) -> None:
            Resource.setups += 1

        def get_client(self) -> str:
            return "client"

    @upstream_decorator(resources={"llms": [Resource()]})
    def judged(messages, **kwargs):  # type: ignore[no-untyped-def]
        return float(kwargs["resources"] == {"llms": ["client"]})

    assert Resource.setups == 0  # not at import: on first use, once per process
    assert judged(CHAT).score == 1.0
    assert judged(CHAT).score == 1.0
    assert Resource.setups == 1


# -- the upstream RewardFunction class, local mode --------------------------------------------


def legacy_tuple(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
    return 0.75, {"length": 0.5, "format": 1.0}


def legacy_dict(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
    return {"score": 0.5, "reason": "ok", "metrics": {"length": 0.5, "exact": {"score": 1.0}}}


@reward_kit.reward_function
def decorated_dict(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
    return {"score": 0.25}


def test_legacy_tuple_is_converted_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call(
        match=r"\(score, \{name: score\}\) tuple from a reward function is deprecated"
    ):
        result = RewardFunction(func=legacy_tuple)(CHAT)
    assert result.score == 0.75
    assert result.metrics == {
        "length": MetricResult(score=0.5, reason="length score"),
        "format": MetricResult(score=1.0, reason="format score"),
    }


def test_legacy_dict_is_converted_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call(match="returning a dict from a reward function is deprecated"):
        result = RewardFunction(func=legacy_dict)(CHAT)
    assert (result.score, result.reason) == (0.5, "ok")
    assert result.metrics["length"] == MetricResult(score=0.5, reason="length score")
    assert result.metrics["exact"].score == 1.0


def test_a_decorated_functions_dict_is_not_deprecated() -> None:
    assert RewardFunction(func=decorated_dict)(CHAT).score == 0.25  # filterwarnings=error


def test_legacy_forms_are_still_checked() -> None:
    def nan(messages, **kwargs):  # type: ignore[no-untyped-def]
        return math.nan, {}

    with pytest.deprecated_call(), pytest.raises(TypeError, match="score must be a finite"):
        RewardFunction(func=nan)(CHAT)


@pytest.mark.parametrize("path", ["tests.test_compat:legacy_dict", "tests.test_compat.legacy_dict"])
def test_func_path_takes_both_forms(path: str) -> None:
    fn = RewardFunction(func_path=path, mode="local")
    assert fn.func is legacy_dict
    with pytest.deprecated_call():
        assert fn(CHAT).score == 0.5


def test_func_path_that_does_not_load_is_an_import_error() -> None:
    with pytest.raises(ImportError, match=r"Failed to load function from path tests\.nope:f"):
        RewardFunction(func_path="tests.nope:f")
    with pytest.raises(ValueError, match="Invalid func_path format"):
        RewardFunction(func_path="nodots")


def test_default_kwargs_are_passed_and_call_kwargs_win() -> None:
    @reward_kit.reward_function
    def scaled(messages, scale=1.0, **kwargs):  # type: ignore[no-untyped-def]
        return EvaluateResult(score=scale, reason=str(sorted(kwargs)))

    fn = RewardFunction(func=scaled, scale=0.5, tag="a")
    assert fn(CHAT).score == 0.5
    assert fn(CHAT, scale=0.25).score == 0.25
    assert fn(CHAT).reason == "['tag']"


def test_ground_truth_is_not_replaced_by_the_prompt() -> None:
    @reward_kit.reward_function
    def truth(messages, ground_truth=None, **kwargs):  # type: ignore[no-untyped-def]
        return EvaluateResult(score=1.0, reason=repr(ground_truth))

    assert RewardFunction(func=truth)(CHAT).reason == "None"  # upstream passed messages[:-1]


def test_lambdas_and_batch_functions() -> None:
    assert RewardFunction(func=lambda messages, **kw: 1.0)(CHAT).score == 1.0

    @reward_kit.reward_function(mode="batch")
    def batch(rollouts_messages, **kwargs):  # type: ignore[no-untyped-def]
        return [1.0] * len(rollouts_messages)

    with pytest.raises(ValueError, match="'batch' is a batch function"):
        RewardFunction(func=batch)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "fireworks_hosted", "model_id": "m"}, "'fireworks_hosted' is not supported"),
        ({"mode": "cloud", "func": legacy_dict}, "Invalid mode: 'cloud'"),
        ({"mode": "local"}, "Either 'func' or 'func_path' must be provided"),
        ({"mode": "remote", "name": "exact"}, "remote mode needs endpoint="),
    ],
)
def test_constructor_errors_say_what_to_do(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardFunction(**arguments)


def test_reward_kit_rewardfunction_points_to_the_upstream_class() -> None:
    with pytest.raises(ValueError, match=r"reward_kit\.reward_function\.RewardFunction"):
        reward_kit.RewardFunction(func=legacy_dict, mode="local")  # type: ignore[arg-type]


# -- TRL adapter, local mode ----------------------------------------------------------------


def test_local_trl_adapter_scores_and_gives_none_for_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @reward_kit.reward_function
    def graded(messages, ground_truth=None, level=0, **kwargs):  # type: ignore[no-untyped-def]
        if messages[-1]["content"] == "boom":
            raise RuntimeError("cannot grade")
        assert "trainer_state" not in kwargs  # TRL's own keywords are not dataset columns
        return EvaluateResult(
            score=float(messages[-1]["content"] == ground_truth) + level,
            is_score_valid=messages[-1]["content"] != "?",
        )

    adapter = RewardFunction(func=graded, level=0.5).get_trl_adapter()
    assert adapter.__name__ == "graded"
    with caplog.at_level(logging.ERROR, logger="reward_kit"):
        rewards = adapter(
            prompts=[[{"role": "user", "content": "2+2?"}]] * 4,
            completions=["4", "5", "boom", [{"role": "assistant", "content": "?"}]],
            completion_ids=[[1]] * 4,
            solution=["4", "4", "4", "4"],
            level=[0.0, 0.0, 0.0, 0.0],
            trainer_state=object(),
        )
    assert rewards == [1.0, 0.0, None, None]  # a failure or an invalid score is None, never 0
    assert "graded: 1 of 4 rewards are None: RuntimeError: cannot grade" in caplog.text


def test_local_trl_adapter_raises_on_a_training_script_bug() -> None:
    adapter = RewardFunction(func=decorated_dict).get_trl_adapter()
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        adapter(prompts=["a", "b"], completions=["c"])
    with pytest.raises(ValueError, match="dataset column 'solution': 2 values for 1"):
        adapter(prompts=["a"], completions=["c"], solution=["x", "y"])


# -- module paths and models ------------------------------------------------------------------


def test_upstream_module_paths_keep_the_package_names() -> None:
    code = (
        "import reward_kit.reward_function, reward_kit.typed_interface, reward_kit.models\n"
        "import reward_kit.agent.models, sys, reward_kit, reward_kit._function as f\n"
        "assert reward_kit.reward_function is f.reward_function\n"
        "assert reward_kit.RewardFunction is f.RewardFunction\n"
        "assert reward_kit.models.Message is reward_kit.Message\n"
        "from reward_kit import reward_function\n"
        "assert reward_function is f.reward_function\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the remote parts are imported on first use


def test_step_data_rejects_non_finite_rewards() -> None:
    with pytest.raises(ValueError, match="advantage must be a finite number"):
        StepData(
            system_step_index=0,
            observation_data=None,
            action_taken={},
            resulting_messages_history=[],
            advantage=math.inf,
        )


# -- docs/compat.md stays true -----------------------------------------------------------------


def test_compat_doc_examples_run(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "compat.md").read_text()
    found = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(found) == 3
    files = []
    for number, code in enumerate(found):
        path = tmp_path / f"compat_md_{number}.py"
        path.write_text(code)
        files.append(str(path))
        if 'mode="remote"' in code:  # needs a served function: compiled and linted only
            compile(code, str(path), "exec")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(compile(code, str(path), "exec"), {"__name__": f"compat_md_{number}"})
        expected = [DeprecationWarning] if "DeprecationWarning" in code else []
        assert [w.category for w in caught] == expected
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--isolated", "--no-cache", "--select", "F,E9", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compat_doc_lists_each_expected_upstream_failure() -> None:
    from .upstream.conftest import DIFFERENCES

    text = (ROOT / "docs" / "compat.md").read_text()
    for node in DIFFERENCES:
        assert f"`{node.rsplit('::', 1)[-1]}`" in text, node
