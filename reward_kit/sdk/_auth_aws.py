"""AWS credentials: SigV4 for Lambda function URLs, and STS identity tokens for self-hosted
evaluators running ``--auth aws-iam``."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from .._extras import require
from ._credentials import Credential, TokenCredential

__all__ = ["AwsIamToken", "AwsSigV4"]

_TOKEN_PREFIX = "rk-aws-v1."
_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
# Headers SigV4 adds; only these are copied onto the real request.
_SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


def _botocore() -> tuple[Any, Any, Any]:
    auth = require("botocore.auth", extra="aws", feature="AWS credentials")
    awsrequest = require("botocore.awsrequest", extra="aws", feature="AWS credentials")
    session = require("botocore.session", extra="aws", feature="AWS credentials")
    return auth, awsrequest, session


class _AwsSession:
    """Where an AWS credential's keys come from: a session given by the caller, a named
    profile, or botocore's default chain. Sessions do not pickle, so a profile or the default
    chain is re-opened in the process a credential is unpickled in (TRL, verl/Ray workers)."""

    def _init_session(self, session: Any, profile: str | None) -> None:
        if session is not None and profile is not None:
            raise ValueError("pass session= or profile=, not both")
        self.profile = profile
        self._given_session = session is not None
        self._session_obj = session

    @property
    def _session(self) -> Any:
        if self._session_obj is None:
            botosession = _botocore()[2]
            self._session_obj = (
                botosession.get_session()
                if self.profile is None
                else botosession.Session(profile=self.profile)
            )
        return self._session_obj

    def _aws_state(self, state: dict[str, Any]) -> dict[str, Any]:
        if self._given_session:
            raise TypeError(
                f"{type(self).__name__}(session=...) cannot be pickled: a boto3/botocore session "
                "does not pickle. Use profile='NAME' or the default credential chain "
                "(environment, ~/.aws, instance or task role), which each process reopens"
            )
        return {**state, "_session_obj": None}


def _frozen_credentials(session: Any) -> Any:
    credentials = session.get_credentials()
    if credentials is None:
        from .._errors import ConfigurationError

        raise ConfigurationError(
            "no AWS credentials found (environment, ~/.aws, instance or task role)"
        )
    # Frozen per request: refreshable (role) credentials renew themselves here.
    return credentials.get_frozen_credentials()


class AwsSigV4(_AwsSession, Credential):
    """Sign every request with SigV4 (service ``lambda``) for a function URL with AuthType
    ``AWS_IAM``; AWS checks the signature and the caller's permission before the evaluator runs.

    >>> url = "https://abc.lambda-url.us-east-1.on.aws"
    >>> EvaluatorClient(url, auth=AwsSigV4(region="us-east-1"))  # doctest: +SKIP

    Credentials come from ``session`` (a boto3 or botocore session), the named ``profile``, or
    botocore's default chain. The exact body bytes are signed, with ``host`` and
    ``content-type``; nothing else the HTTP stack may rewrite is signed. Pickles (for TRL and
    verl workers) unless given a ``session``.
    """

    requires_request_body = True

    def __init__(
        self,
        *,
        region: str,
        service: str = "lambda",
        session: Any = None,
        profile: str | None = None,
    ) -> None:
        _botocore()  # fail now, not at the first request, if the extra is missing
        self.region, self.service = region, service
        self._init_session(session, profile)

    def __getstate__(self) -> dict[str, Any]:
        return self._aws_state(self.__dict__.copy())

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def auth_flow(self, request: httpx.Request) -> Any:
        auth, awsrequest, _ = _botocore()
        headers = {}
        if "content-type" in request.headers:
            headers["Content-Type"] = request.headers["content-type"]
        signed = awsrequest.AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        credentials = _frozen_credentials(self._session)
        auth.SigV4Auth(credentials, self.service, self.region).add_auth(signed)
        for name in _SIGNATURE_HEADERS:
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request

    def __repr__(self) -> str:
        return f"AwsSigV4(region={self.region!r}, service={self.service!r})"


class AwsIamToken(_AwsSession, TokenCredential):
    """A bearer token proving the caller's AWS identity to a self-hosted evaluator
    (``--auth aws-iam``): a SigV4-signed ``sts:GetCallerIdentity`` request that the server
    sends to STS itself, so it learns the caller's ARN without ever seeing a secret.

    >>> EvaluatorClient("https://evaluator.internal:8443",
    ...                 auth=AwsIamToken(region="us-east-1", server_id="evaluator-prod"))
    ... # doctest: +SKIP

    ``server_id`` must match the server's ``--aws-server-id`` (it is signed in, so a token
    cannot be replayed against another server). STS honours a signed request for 15 minutes;
    a new token is made every ``lifetime`` seconds. Keys come from ``session``, ``profile``
    or botocore's default chain; pickles (for TRL and verl workers) unless given a ``session``.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        server_id: str | None = None,
        session: Any = None,
        profile: str | None = None,
        sts_endpoint: str | None = None,
        lifetime: float = 600.0,
        header: str = "Authorization",
    ) -> None:
        super().__init__(header=header)
        _botocore()  # fail now, not at the first request, if the extra is missing
        self.region, self.server_id, self.lifetime = region, server_id, lifetime
        self.sts_endpoint = (sts_endpoint or f"https://sts.{region}.amazonaws.com").rstrip("/")
        self._init_session(session, profile)
        self.refresh_margin = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return self._aws_state(super().__getstate__())

    def make_token(self) -> str:
        """A new token, valid at the server for 15 minutes from now."""
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        if self.server_id is not None:
            headers["X-RK-Server-ID"] = self.server_id
        auth, awsrequest, _ = _botocore()
        signed = awsrequest.AWSRequest(
            method="POST", url=self.sts_endpoint + "/", data=_BODY, headers=headers
        )
        credentials = _frozen_credentials(self._session)
        auth.SigV4Auth(credentials, "sts", self.region).add_auth(signed)
        document = {"url": signed.url, "headers": dict(signed.headers.items()), "body": _BODY}
        raw = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
        return _TOKEN_PREFIX + raw

    def _fetch(self, request: httpx.Request) -> tuple[str, float]:
        return self.make_token(), self.clock() + self.lifetime

    def __repr__(self) -> str:
        return f"AwsIamToken(region={self.region!r}, server_id={self.server_id!r})"
