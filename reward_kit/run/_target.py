"""Which endpoint a run talks to, known before anything starts: the model name sent, the
identity that goes into cache keys, and how to reach it. A local model's server is started
only when a request has to be made, so a fully cached re-run needs neither llama.cpp nor a
key."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .._errors import ConfigurationError
from ._config import RunConfig
from ._generate import Endpoint

__all__ = ["LOCAL_PREFIX", "Target", "resolve_target"]

LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class Target:
    """``model``: the name in each request; ``identity``: the endpoint in cache keys (a local
    server's port changes every run, so its identity names its weights file and the versions
    of the packages that serve it instead)."""

    model: str
    identity: str
    base_url: str | None
    api_key_env: str | None
    local_name: str | None = None

    def start(self, stack: contextlib.ExitStack) -> Endpoint:
        """Reach the endpoint, starting the local server (stopped when ``stack`` closes)."""
        if self.local_name is None:
            assert self.base_url is not None
            return Endpoint(
                base_url=self.base_url,
                model=self.model,
                identity=self.identity,
                api_key_env=self.api_key_env,
            )
        from ._local_model import local_model

        local = stack.enter_context(local_model(self.local_name))
        return Endpoint(base_url=local.base_url, model=local.model, identity=self.identity)


def resolve_target(config: RunConfig) -> Target:
    """The run's endpoint, or a clear error naming the key that is missing or wrong."""
    model = config.model
    if model.base_url is not None:
        return Target(model.name, model.base_url, model.base_url, model.api_key_env)
    if not model.name.startswith(LOCAL_PREFIX):
        raise ConfigurationError(
            "config key 'model.base_url': required for a remote model (e.g. "
            "https://api.openai.com/v1); only local:NAME models start a server of their own"
        )
    from ._local_model import LOCAL_MODELS, local_identity

    weights = LOCAL_MODELS.get(model.name.removeprefix(LOCAL_PREFIX).lower())
    if weights is None:
        known = ", ".join(f"{LOCAL_PREFIX}{name}" for name in LOCAL_MODELS)
        raise ConfigurationError(
            f"config key 'model.name': unknown local model {model.name!r} (known: {known})"
        )
    identity = local_identity(model.name)
    return Target(weights.alias, identity, None, None, local_name=model.name)
