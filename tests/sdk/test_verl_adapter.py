"""reward_kit.sdk.verl against a real evaluator: the batch compute_score, the keys every sample
carries, verl's non-data arguments, and a caller's own timeout. verl itself drives the same
objects in test_verl_peer.py."""

from __future__ import annotations

import functools
import json
import logging
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reward_kit import EvaluationError, EvaluatorUnavailable, FunctionError, UnknownFunction
from reward_kit.sdk import EvaluatorClient
from reward_kit.sdk.verl import (
    NON_DATA_KWARGS,
    RemoteBatchComputeScore,
    batch_compute_score_fn,
    compute_score_fn,
)

from ..conftest import LiveServer
from ._verl_harness import VERL_REWARDS
from .conftest import KEY, CountingTransport, make_server


@pytest.fixture(scope="module")
def verl_server() -> Iterator[LiveServer]:
    with make_server(targets=(VERL_REWARDS,)) as live:
        yield live


def counted(server: LiveServer, **options: Any) -> tuple[EvaluatorClient, CountingTransport]:
    transport = CountingTransport()
    client = EvaluatorClient(server.url, auth=KEY, transport=transport, **options)
    return client, transport


def kwargs_seen(row_reason: str) -> dict[str, Any]:
    return json.loads(row_reason)["kwargs"]  # type: ignore[no-any-return]


def test_batch_scores_in_order_in_one_request(verl_server: LiveServer) -> None:
    client, transport = counted(verl_server)
    score = batch_compute_score_fn(client, function="judge")
    rows = score(
        data_sources=["a", "b", "c"],
        solution_strs=["4", "five", "6"],
        ground_truths=["4", "5", "6"],
        extra_infos=[{"index": 0}, {"index": 1}, None],
    )
    assert [row["score"] for row in rows] == [1.0, 0.0, 1.0]
    # Declared metrics: every row has both, the one "five" did not return is filled with 0.0.
    assert rows[1] == {"score": 0.0, "exact": 0.0, "length": 0.0}
    assert rows[0] == {"score": 1.0, "exact": 1.0, "length": 1.0}
    assert transport.paths == ["/functions", "/batch_evaluate"]
    score(data_sources=["a"], solution_strs=["4"], ground_truths=["4"], extra_infos=[{}])
    assert transport.paths[2:] == ["/batch_evaluate"]  # the metric keys are looked up once
    score.close()


def test_batch_sends_each_sample_its_own_data(verl_server: LiveServer) -> None:
    from reward_kit.sdk._core import make_item

    score = batch_compute_score_fn(verl_server.url, function="judge", auth=KEY)
    extras = [{"prompt": "2+2?", "index": 7}, {"index": 8}]
    with EvaluatorClient(verl_server.url, auth=KEY) as client:
        # What the function received, read back from its reason through the plain client.
        item = make_item(
            [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
            "4",
            kwargs={"data_source": "gsm8k", "extra_info": extras[0], "scale": 2},
        )
        direct = client.batch_evaluate([item], function="judge")[0].result
    assert direct is not None
    rows = score(
        data_sources=["gsm8k", "math"],
        solution_strs=["4", "x"],
        ground_truths=["4", "y"],
        extra_infos=extras,
        scale=2,
    )
    assert rows[0]["score"] == direct.score == 1.0
    assert kwargs_seen(direct.reason or "") == {
        "data_source": "gsm8k",
        "extra_info": {"prompt": "2+2?", "index": 7},
        "scale": 2,
    }
    score.close()


def test_batch_failure_raises_its_typed_error_naming_the_sample(verl_server: LiveServer) -> None:
    score = batch_compute_score_fn(verl_server.url, function="judge", auth=KEY)
    with pytest.raises(FunctionError, match=r"^sample 1 of 3: .*asked to fail"):
        score(
            data_sources=["a"] * 3,
            solution_strs=["1", "2", "3"],
            ground_truths=["1", "raise", "3"],
        )
    with pytest.raises(EvaluationError, match=r"sample 0 of 1: judge marked its score invalid"):
        score(data_sources=["a"], solution_strs=["1"], ground_truths=["invalid"])
    score.close()


def test_batch_fallback_scores_only_the_failed_samples(verl_server: LiveServer) -> None:
    score = batch_compute_score_fn(
        verl_server.url, function="judge", auth=KEY, on_error=-1.0, metrics=["exact", "length"]
    )
    rows = score(
        data_sources=["a"] * 4,
        solution_strs=["1", "2", "x", "4"],
        ground_truths=["1", "raise", "invalid", "5"],
        extra_infos=[{}] * 4,
    )
    assert [row["score"] for row in rows] == [1.0, -1.0, -1.0, 0.0]
    assert [row["reward_kit_failed"] for row in rows] == [0.0, 1.0, 1.0, 0.0]
    assert {tuple(sorted(row)) for row in rows} == {
        ("exact", "length", "reward_kit_failed", "score")
    }
    score.close()


def test_batch_fallback_without_metrics_sends_only_the_flag(
    verl_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    # With on_error, metric keys come only from metrics=: a sample that failed before any
    # result (in this process or another) must carry the same keys as every other.
    score = batch_compute_score_fn(verl_server.url, function="loose", auth=KEY, on_error=0.0)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            rows = score(
                data_sources=["a"] * 3,
                solution_strs=["1", "a1", "bb"],
                ground_truths=["raise", "a1", "x"],
            )
            assert rows == [
                {"score": 0.0, "reward_kit_failed": 1.0},
                {"score": 1.0, "reward_kit_failed": 0.0},
                {"score": 0.0, "reward_kit_failed": 0.0},
            ]
    hints = [r.getMessage() for r in caplog.records if "declares no metrics" in r.getMessage()]
    assert len(hints) == 1
    assert "pass metrics=[...] to the adapter" in hints[0]
    score.close()


def test_batch_misconfiguration_is_never_a_fallback(verl_server: LiveServer) -> None:
    unknown = batch_compute_score_fn(verl_server.url, function="nope", auth=KEY, on_error=0.0)
    with pytest.raises(UnknownFunction):
        unknown(data_sources=["a"], solution_strs=["1"], ground_truths=["1"])
    with pytest.raises(ValueError, match="ground_truths has 1 entries for 2 solution_strs"):
        unknown(data_sources=["a", "b"], solution_strs=["1", "2"], ground_truths=["1"])
    unknown.close()


def test_batch_outage_falls_back_for_every_sample_or_raises() -> None:
    from ..conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    raising = batch_compute_score_fn(url, function="judge", auth=KEY, max_retries=0)
    with pytest.raises(EvaluatorUnavailable):
        raising(data_sources=["a"], solution_strs=["1"], ground_truths=["1"])
    chosen = batch_compute_score_fn(url, function="judge", auth=KEY, max_retries=0, on_error=0.5)
    rows = chosen(data_sources=["a", "b"], solution_strs=["1", "2"], ground_truths=["1", "2"])
    assert rows == [{"score": 0.5, "reward_kit_failed": 1.0}] * 2


def test_batch_pickles_and_copies_score_in_another_process_state(verl_server: LiveServer) -> None:
    score = batch_compute_score_fn(verl_server.url, function="judge", auth=KEY, on_error=0.0)
    score(data_sources=["a"], solution_strs=["1"], ground_truths=["1"])
    clone = pickle.loads(pickle.dumps(score))  # verl ships it to Ray workers
    assert isinstance(clone, RemoteBatchComputeScore)
    assert clone(data_sources=["a"], solution_strs=["2"], ground_truths=["2"])[0]["score"] == 1.0
    score.close()
    clone.close()


class RecordingTransport(CountingTransport):
    """Also keeps each request body, to check what crossed the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()) if request.content else None)
        return super().handle_request(request)


@pytest.mark.parametrize("batch", [False, True])
def test_verl_non_data_arguments_are_left_out(verl_server: LiveServer, batch: bool) -> None:
    class Qwen2Tokenizer:  # what verl passes: a tokenizer object, not JSON
        pass

    router = {"reward_router_address": "10.0.0.1:30000", "reward_model_tokenizer": Qwen2Tokenizer()}
    assert set(router) == NON_DATA_KWARGS
    transport = RecordingTransport()
    client = EvaluatorClient(verl_server.url, auth=KEY, transport=transport)
    if batch:
        scorer: Any = batch_compute_score_fn(client, function="judge")
        rows = scorer(data_sources=["a"], solution_strs=["1"], ground_truths=["1"], **router)
        sent = transport.bodies[-1]["items"][0]["kwargs"]
    else:
        scorer = compute_score_fn(client, function="judge")
        rows = [scorer("a", "1", "1", extra_info={"k": 1}, scale=2, **router)]
        sent = transport.bodies[-1]["kwargs"]
    assert rows[0]["score"] == 1.0
    assert set(sent) == ({"data_source", "extra_info"} | (set() if batch else {"scale"}))
    scorer.close()


@pytest.mark.parametrize("batch", [False, True])
def test_other_unsendable_arguments_are_refused_by_name(
    verl_server: LiveServer, batch: bool
) -> None:
    transport = CountingTransport()
    client = EvaluatorClient(verl_server.url, auth=KEY, transport=transport)
    if batch:
        scorer: Any = batch_compute_score_fn(client, function="judge")
        with pytest.raises(TypeError, match=r"judge_model=<lock>, which cannot be sent"):
            scorer(["a"], ["1"], ["1"], judge_model=threading.Lock())
        with pytest.raises(TypeError, match=r"extra_infos\[1\]=<dict>"):
            scorer(["a", "b"], ["1", "2"], ["1", "2"], [{}, {"image": object()}])
    else:
        scorer = compute_score_fn(client, function="judge")
        with pytest.raises(TypeError, match=r"judge_model=<lock>, which cannot be sent"):
            scorer("a", "1", "1", judge_model=threading.Lock())
        with pytest.raises(TypeError, match=r"extra_info=<dict>"):
            scorer("a", "1", "1", extra_info={"image": object()})
    assert transport.paths == []  # refused before anything was sent
    scorer.close()


@pytest.fixture
def alarm() -> Iterator[Any]:
    """Arm a one-shot SIGALRM whose handler raises TimeoutError, as verl's
    compute_score_timeout does, and restore the previous handler afterwards."""
    previous = signal.getsignal(signal.SIGALRM)

    def arm(seconds: float) -> None:
        def handler(signum: int, frame: object) -> None:
            raise TimeoutError(f"compute_score timed out after {seconds}s")

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_callers_timeout_signal_is_raised_at_once_never_retried(
    verl_server: LiveServer, alarm: Any
) -> None:
    client, transport = counted(verl_server, max_retries=5)
    score = compute_score_fn(client, function="judge")
    score("a", "1", "1")  # the metric keys are looked up before the alarm is armed
    alarm(0.3)
    with pytest.raises(TimeoutError, match=r"compute_score timed out after 0\.3s") as raised:
        score("a", "1", "sleep:1")
    assert not isinstance(raised.value, EvaluatorUnavailable)
    assert transport.paths.count("/evaluate/judge") == 2  # one per call: nothing was retried
    assert score("a", "1", "1")["score"] == 1.0  # the interrupted connection was dropped cleanly
    score.close()


class Deadline:
    def expired(self, signum: int, frame: object) -> None:
        raise TimeoutError("the caller's deadline")


def _expired(note: str, signum: int, frame: object) -> None:
    raise TimeoutError(note)


@pytest.mark.parametrize(
    "handler",
    [Deadline().expired, functools.partial(_expired, "the caller's deadline")],
    ids=["bound method", "partial"],
)
def test_the_client_re_raises_any_signal_handlers_exception(
    verl_server: LiveServer, handler: Any
) -> None:
    previous = signal.signal(signal.SIGALRM, handler)
    client, transport = counted(verl_server, max_retries=5)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(TimeoutError, match="the caller's deadline"):
            client.evaluate([{"role": "assistant", "content": "1"}], "sleep:1", function="judge")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        client.close()
    assert transport.paths == ["/evaluate/judge"]


def test_a_callers_timeout_honours_on_error(verl_server: LiveServer, alarm: Any) -> None:
    client, transport = counted(verl_server)
    score = compute_score_fn(client, function="judge", on_error=-1.0)
    assert score("a", "1", "1")["reward_kit_failed"] == 0.0
    alarm(0.3)
    row = score("a", "1", "sleep:1")
    assert row == {"score": -1.0, "reward_kit_failed": 1.0}
    assert transport.paths.count("/evaluate/judge") == 2
    score.close()


def test_a_read_timeout_of_the_client_itself_is_still_retried(verl_server: LiveServer) -> None:
    client, transport = counted(verl_server, timeout=0.2, max_retries=1)
    score = compute_score_fn(client, function="judge")
    score("a", "1", "1")
    with pytest.raises(EvaluatorUnavailable, match="ReadTimeout"):
        score("a", "1", "sleep:0.6")
    assert transport.paths.count("/evaluate/judge") == 3  # the first call, then 1 + 1 retry
    score.close()


def test_threads_starting_together_share_one_metric_lookup(verl_server: LiveServer) -> None:
    client, transport = counted(verl_server)
    score = compute_score_fn(client, function="judge")
    start = threading.Barrier(16)
    rows: list[Any] = []

    def call() -> None:
        start.wait()
        rows.append(score("a", "1", "1"))

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [row["score"] for row in rows] == [1.0] * 16
    assert transport.paths.count("/functions") == 1
    score.close()


class SlowToFail(CountingTransport):
    """Takes a while before the real connection attempt (to a closed port) fails."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(0.5)
        return super().handle_request(request)


def test_threads_waiting_on_a_failed_lookup_share_its_error() -> None:
    from ..conftest import free_port

    transport = SlowToFail()
    url = f"http://127.0.0.1:{free_port()}"
    client = EvaluatorClient(url, auth=KEY, transport=transport, max_retries=0)
    score = compute_score_fn(client, function="judge")
    start = threading.Barrier(8)
    errors: list[Any] = []

    def call() -> None:
        start.wait()
        try:
            score("a", "1", "1")
        except EvaluatorUnavailable as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 8
    # The threads that arrived while the lookup was failing took its error, not a lookup each.
    assert transport.paths == ["/functions"]
    with pytest.raises(EvaluatorUnavailable):
        score("a", "1", "1")  # a later call looks up again
    assert transport.paths == ["/functions", "/functions"]
    score.close()


def test_with_on_error_rows_after_an_outage_match_the_others(verl_server: LiveServer) -> None:
    class DownOnce(httpx.HTTPTransport):
        failed = False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if not self.failed:
                self.failed = True
                raise httpx.ConnectError("down", request=request)
            return super().handle_request(request)

    for metrics in (None, ["exact", "length"]):
        client = EvaluatorClient(verl_server.url, auth=KEY, transport=DownOnce(), max_retries=0)
        score = compute_score_fn(client, function="judge", on_error=-1.0, metrics=metrics)
        down, up = score("a", "1", "1"), score("a", "1", "1")
        assert (down["score"], up["score"]) == (-1.0, 1.0)
        # verl lists every key of the first sample for the whole batch: they must match.
        assert set(down) == set(up) == {"score", "reward_kit_failed", *(metrics or ())}
        score.close()


def test_metrics_given_fix_the_keys_without_a_lookup(verl_server: LiveServer) -> None:
    client, transport = counted(verl_server)
    score = batch_compute_score_fn(client, function="loose", metrics=["digits"], on_error=0.0)
    rows = score(data_sources=["a", "b"], solution_strs=["x", "1"], ground_truths=["raise", "1"])
    assert rows == [
        {"score": 0.0, "digits": 0.0, "reward_kit_failed": 1.0},
        {"score": 1.0, "digits": 1.0, "reward_kit_failed": 0.0},  # "chars" is not sent
    ]
    assert transport.paths == ["/batch_evaluate"]
    with pytest.raises(TypeError, match="metrics must be a list of metric names"):
        compute_score_fn(client, function="loose", metrics="digits")
    score.close()


def test_each_thread_has_its_own_client_closed_with_the_thread() -> None:
    # One httpx client shared by hundreds of verl threads shows transport faults under load.
    import gc

    score = compute_score_fn("http://127.0.0.1:9", function="judge", auth=False)
    mine = score._get_client()
    assert score._get_client() is mine
    theirs: list[Any] = []
    thread = threading.Thread(target=lambda: theirs.append(score._get_client()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    theirs_http = list(theirs[0]._http)
    del theirs[:]
    gc.collect()
    assert all(http.is_closed for http in theirs_http)  # went with its thread
    mine_http = list(mine._http)
    score.close()
    assert all(http.is_closed for http in mine_http)
    assert score._get_client() is not mine  # a later call opens a new one
    copy = pickle.loads(pickle.dumps(score))
    assert copy._get_client() is not score._get_client()
    score.close()
    copy.close()


def test_a_callers_transport_is_left_open_for_its_owner(verl_server: LiveServer) -> None:
    class Closing(CountingTransport):
        closed = 0

        def close(self) -> None:
            self.closed += 1
            super().close()

    transport = Closing()
    client = EvaluatorClient(verl_server.url, auth=KEY, transport=transport)
    score = compute_score_fn(client, function="judge")
    worker = threading.Thread(target=lambda: score("a", "1", "1"))
    worker.start()
    worker.join()  # the thread's client is closed with the thread, not the shared transport
    score("a", "1", "1")
    score.close()
    assert "/evaluate/judge" in transport.paths
    assert transport.closed == 0
    client.close()
    assert transport.closed == 1
