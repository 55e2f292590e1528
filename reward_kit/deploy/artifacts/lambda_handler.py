"""What runs inside an AWS Lambda bundle: the evaluator app behind a Mangum handler.

The bundle's ``rk_lambda.py`` calls :func:`make_handler` at import (the Lambda init phase),
so loading the rewards, reading the API key and starting the engine happen once per cold
start, not per request.

Configuration is the usual ``RK_*`` environment plus ``RK_API_KEY_SECRET_ARN``: the Secrets
Manager secret (its SecretString holds key-file lines, ``ID KEY`` or ``ID sha256:HEX``) read
with boto3, which the Lambda Python runtime provides.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..._errors import ConfigurationError

__all__ = ["SECRET_ARN_VARIABLE", "make_handler", "read_secret_keys"]

SECRET_ARN_VARIABLE = "RK_API_KEY_SECRET_ARN"


def read_secret_keys(arn: str, *, client: Any = None) -> tuple[str, ...]:
    """The API key entries stored in the Secrets Manager secret ``arn``."""
    if client is None:
        try:
            boto3: Any = importlib.import_module("boto3")
        except ImportError:
            raise ConfigurationError(
                f"{SECRET_ARN_VARIABLE} is set but boto3 is not importable (the Lambda Python "
                "runtime provides it; elsewhere pip install boto3)"
            ) from None
        client = boto3.client("secretsmanager")
    try:
        text = client.get_secret_value(SecretId=arn)["SecretString"]
    except Exception as error:
        # The execution role needs secretsmanager:GetSecretValue on exactly this ARN.
        raise ConfigurationError(
            f"cannot read the API key secret {arn}: {type(error).__name__}: {error}"
        ) from error
    entries = tuple(line.strip() for line in str(text).splitlines() if line.strip())
    if not entries:
        raise ConfigurationError(f"the API key secret {arn} is empty")
    return entries


def make_handler(
    *,
    targets: Sequence[str],
    root: Path | str,
    defaults: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    secrets_client: Any = None,
) -> Any:
    """Build the Mangum handler for ``targets`` (file targets are relative to ``root``).

    ``defaults`` are ``RK_*`` values baked in at build time (the auth mode); the function's
    environment wins over them.

    >>> handler = make_handler(targets=["src/rewards.py"], root="/var/task")  # doctest: +SKIP
    """
    from mangum import Mangum

    from ...service import ServeSettings, create_app

    env = {**(defaults or {}), **(os.environ if environ is None else environ)}
    base = Path(root)
    resolved = tuple(str(base / t) if ".py" in t else t for t in targets)
    # No worker processes: Lambda has no /dev/shm, so multiprocessing locks cannot work.
    flags: dict[str, Any] = {"targets": resolved, "workers": 0}
    arn = env.get(SECRET_ARN_VARIABLE)
    if arn:
        flags["api_keys"] = read_secret_keys(arn, client=secrets_client)
    try:
        settings = ServeSettings.resolve(flags, env)
        app = create_app(settings=settings)
    except ConfigurationError as error:
        if "api-key" not in str(error.message):
            raise
        raise ConfigurationError(
            f"{error.message}; on AWS Lambda, set {SECRET_ARN_VARIABLE} to the ARN of the "
            "Secrets Manager secret that holds the key lines"
        ) from error
    # Mangum runs every invocation on the thread's current loop; start the engine on that
    # loop now and skip the ASGI lifespan, which Mangum would run (start and stop) per event.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(app.state.service.engine.start())
    # What the init phase built lives as long as the instance: the collector need not scan it
    # again on every full collection (as rk serve does, service/_server.py).
    gc.freeze()
    return Mangum(app, lifespan="off")
