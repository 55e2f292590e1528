"""Settings a caller passes are used or refused, never silently dropped; and every credential
reward_kit.sdk.auth offers is importable from reward_kit.sdk."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import httpx
import pytest

import reward_kit.sdk
import reward_kit.sdk.auth
from reward_kit.sdk import AsyncEvaluatorClient, EvaluatorClient, trl_reward, trl_reward_sync
from reward_kit.sdk._core import ClientConfig
from reward_kit.sdk.verl import RemoteComputeScore, compute_score_fn

URL = "http://127.0.0.1:1"


def test_every_credential_is_exported_from_the_sdk() -> None:
    credentials = {
        name
        for name in reward_kit.sdk.auth.__all__
        if inspect.isclass(obj := getattr(reward_kit.sdk.auth, name))
        and issubclass(obj, httpx.Auth)
        and not inspect.isabstract(obj)
    }
    assert "NoAuth" in credentials
    missing = credentials - set(reward_kit.sdk.__all__)
    assert not missing, f"not in reward_kit.sdk.__all__: {sorted(missing)}"
    for name in credentials:
        assert getattr(reward_kit.sdk, name) is getattr(reward_kit.sdk.auth, name)


def _targets() -> list[Any]:
    return [EvaluatorClient(URL, auth=False), ClientConfig(url=URL)]


@pytest.mark.parametrize("make", [compute_score_fn, RemoteComputeScore])
@pytest.mark.parametrize(
    ("option", "value"), [("auth", "rk_some-key-0123456789"), ("auth", False), ("timeout", 5.0),
                          ("max_retries", 0)],
)  # fmt: skip
def test_verl_refuses_options_a_client_already_carries(make: Any, option: str, value: Any) -> None:
    for target in _targets():
        with pytest.raises(TypeError, match=rf"{option}: not accepted with an EvaluatorClient"):
            make(target, function="f", **{option: value})
        if isinstance(target, EvaluatorClient):
            target.close()


def test_verl_takes_a_client_settings_without_options() -> None:
    with EvaluatorClient(URL, auth=False, timeout=7.0, max_retries=2) as client:
        scorer = compute_score_fn(client, function="f")
    assert scorer.config.timeout == 7.0
    assert scorer.config.max_retries == 2
    with pytest.raises(TypeError, match="auth, timeout: not accepted"):
        compute_score_fn(ClientConfig(url=URL), function="f", auth="k", timeout=1.0)


@pytest.mark.parametrize("factory", [trl_reward, trl_reward_sync])
def test_trl_refuses_auth_with_a_client(factory: Any) -> None:
    with EvaluatorClient(URL, auth=False) as client:
        with pytest.raises(TypeError, match="auth: not accepted with a client"):
            factory(client, function="f", auth="rk_some-key-0123456789")
        assert factory(client, function="f").config is client.config
    client_async = AsyncEvaluatorClient(URL, auth=False)
    try:
        with pytest.raises(TypeError, match="auth: not accepted with a client"):
            factory(client_async, function="f", auth=False)
    finally:
        asyncio.run(client_async.aclose())
    with pytest.raises(TypeError, match="auth: not accepted with a client"):
        factory(ClientConfig(url=URL), function="f", auth="rk_some-key-0123456789")
