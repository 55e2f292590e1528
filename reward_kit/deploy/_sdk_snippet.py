"""The ready-to-paste Python a deploy prints: the SDK client with the right credential."""

from __future__ import annotations

import json

__all__ = ["sdk_snippet"]


def sdk_snippet(
    url: str, auth: str, *, region: str | None = None, max_batch_bytes: int | None = None
) -> str:
    """Python that calls the evaluator at ``url`` with the credential ``auth`` needs.

    >>> print(sdk_snippet("https://x.run.app", "google-iam").splitlines()[0])
    from reward_kit.sdk import EvaluatorClient, GoogleIdToken
    """
    imports, arguments = ["EvaluatorClient"], [json.dumps(url)]
    if auth == "api-key":
        imports.append("ApiKey")
        arguments.append('auth=ApiKey(os.environ["RK_API_KEY"])')
    elif auth == "google-iam":
        # GoogleIdToken's default audience is the URL's origin, which is what Cloud Run checks.
        imports.append("GoogleIdToken")
        arguments.append("auth=GoogleIdToken()")
    elif auth == "aws-iam":
        imports.append("AwsSigV4")
        arguments.append(f"auth=AwsSigV4(region={json.dumps(region or 'us-east-1')})")
    if max_batch_bytes is not None:
        arguments.append(f"max_batch_bytes={max_batch_bytes:_}")
    head = "import os\n" if auth == "api-key" else ""
    head += f"from reward_kit.sdk import {', '.join(sorted(imports))}\n\n"
    call = "".join(f"    {argument},\n" for argument in arguments)
    return f"{head}with EvaluatorClient(\n{call}) as client:\n    print(client.functions())\n"
