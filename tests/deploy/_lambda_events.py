"""What the Lambda handler tests send: function-URL events (payload 2.0) and a scored item."""

from __future__ import annotations

import json

ITEM = {
    "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    "ground_truth": "4",
}


def url_event(
    method: str, path: str, *, body: object = None, headers: dict[str, str] | None = None,
    iam_arn: str | None = None,
) -> dict[str, object]:  # fmt: skip
    """A Lambda function-URL (API Gateway HTTP API payload 2.0) event."""
    context: dict[str, object] = {
        "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abc", "requestId": "req-1", "routeKey": "$default", "stage": "$default",
        "time": "22/Nov/2026:06:00:00 +0000", "timeEpoch": 1795000000000,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "198.51.100.7", "userAgent": "reward-kit-test"},
    }  # fmt: skip
    if iam_arn is not None:
        # What AWS adds for AuthType=AWS_IAM once it has checked the SigV4 signature.
        context["authorizer"] = {
            "iam": {"accessKey": "AKIAEXAMPLE", "accountId": "123456789012",
                    "callerId": "AROAEXAMPLE:job-7", "userArn": iam_arn, "userId": "AROAEXAMPLE"}
        }  # fmt: skip
    event: dict[str, object] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", **(headers or {})},
        "requestContext": context, "isBase64Encoded": False,
    }  # fmt: skip
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"  # type: ignore[index]
    return event
