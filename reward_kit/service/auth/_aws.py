"""AWS IAM: (a) on Lambda behind a function URL with AuthType AWS_IAM, the caller AWS already
verified (``requestContext.authorizer.iam`` of the event Mangum puts in ``scope["aws.event"]``);
(b) self-hosted, a bearer token that is a signed ``sts:GetCallerIdentity`` request, which the
server sends to STS itself (the Vault / aws-iam-authenticator pattern). Both then apply an ARN
allow-list. No header a client can set is ever taken as its identity."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
from starlette.requests import HTTPConnection

from ..._errors import (
    AuthenticationError,
    ConfigurationError,
    EvaluatorUnavailable,
    PermissionDenied,
)
from ._base import Identity, bearer_token

__all__ = ["TOKEN_PREFIX", "AwsIamAuthenticator", "GET_CALLER_IDENTITY_BODY", "SERVER_ID_HEADER"]

logger = logging.getLogger("reward_kit.auth")

MODE = "aws-iam"
TOKEN_PREFIX = "rk-aws-v1."
GET_CALLER_IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
SERVER_ID_HEADER = "x-rk-server-id"
# Real STS hosts: the global endpoint and the regional ones (incl. GovCloud, ISO, China and
# FIPS). The middle label must be a region: a looser ``[a-z0-9-]+`` also let through hosts
# anyone can occupy, such as an S3 bucket named "sts" (sts.s3.amazonaws.com) or API Gateway.
_REGION = r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}"
_STS_HOST = re.compile(rf"sts(-fips)?(\.{_REGION})?\.amazonaws\.com(\.cn)?")
# STS itself refuses header-signed requests older than 15 minutes; so do we, before asking.
MAX_TOKEN_AGE = 15 * 60
MAX_CLOCK_AHEAD = 5 * 60


def _arn_allowed(arn: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(arn, p) for p in patterns)


class AwsIamAuthenticator:
    """ARN allow-listed AWS callers, from the Lambda authorizer or a presigned STS token.

    >>> auth = AwsIamAuthenticator(allowed_arns=["arn:aws:iam::123456789012:role/trainer"])
    >>> auth.sts_origin is None
    True

    ``allowed_arns`` are shell-style patterns (``arn:aws:sts::123456789012:assumed-role/R/*``).
    ``sts_endpoint`` replaces the real STS hosts with exactly one origin (tests, VPC endpoints).
    ``server_id``, when set, must be signed into the token, so a token minted for another
    server cannot be replayed here.
    """

    mode = MODE
    CACHE_SECONDS = 300.0
    CACHE_SIZE = 4096

    def __init__(
        self,
        *,
        allowed_arns: Iterable[str],
        sts_endpoint: str | None = None,
        server_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.allowed_arns = tuple(allowed_arns)
        if not self.allowed_arns:
            raise ConfigurationError(
                "aws-iam needs an ARN allow-list (--aws-allow-arn): without one, any AWS "
                "account could authenticate; use '*' only if the platform restricts callers"
            )
        self.sts_origin: tuple[str, str] | None = None
        if sts_endpoint:
            parts = urlsplit(sts_endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError(f"aws-iam: sts endpoint {sts_endpoint!r} is not a URL")
            self.sts_origin = (parts.scheme, parts.netloc.lower())
        self.server_id = server_id
        self.timeout = timeout
        # sha256(token) -> (arn, expires); bounded, and only holds tokens STS accepted.
        self._verified: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    async def authenticate(self, connection: HTTPConnection) -> Identity | None:
        event = connection.scope.get("aws.event")
        if isinstance(event, Mapping):
            iam = _lambda_iam_block(event)
            if iam is not None:
                return self._allow(str(iam.get("userArn") or ""), via="lambda function URL")
        token = bearer_token(connection)
        if token is None or not token.startswith(TOKEN_PREFIX):
            return None
        return self._allow(await self._verify_token(token), via="sts")

    def _allow(self, arn: str, *, via: str) -> Identity:
        if not arn:
            raise AuthenticationError(f"{MODE}: the {via} identity carries no ARN")
        if not _arn_allowed(arn, self.allowed_arns):
            raise PermissionDenied(f"{MODE}: {arn} is not on this evaluator's allow-list")
        return Identity(mode=MODE, subject=arn, details={"via": via})

    async def _verify_token(self, token: str) -> str:
        key = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        url, headers, signed_at = self._parse(token)
        arn = await self._ask_sts(url, headers)
        # Never trust a token past its own 15-minute life, even from the cache.
        life = min(self.CACHE_SECONDS, signed_at + MAX_TOKEN_AGE - time.time())
        self._verified[key] = (arn, time.monotonic() + life)
        while len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return arn

    def _parse(self, token: str) -> tuple[str, dict[str, str], float]:
        bad = AuthenticationError(f"{MODE}: the bearer token is not a readable STS token")
        try:
            raw = token.removeprefix(TOKEN_PREFIX)
            request = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise bad from None
        if not isinstance(request, dict) or not isinstance(request.get("headers"), dict):
            raise bad
        url, body = request.get("url"), request.get("body")
        headers = {str(k).lower(): str(v) for k, v in request["headers"].items()}
        if not isinstance(url, str) or body != GET_CALLER_IDENTITY_BODY:
            raise AuthenticationError(f"{MODE}: the token is not a GetCallerIdentity request")
        self._check_url(url)
        signed_at = self._check_signature_block(headers)
        host = urlsplit(url).netloc.lower()
        if headers.get("host", host).lower() != host:
            raise AuthenticationError(f"{MODE}: the token's Host header does not match its URL")
        return url, headers, signed_at

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc.lower())
        if self.sts_origin is not None:
            allowed = origin == self.sts_origin
        else:
            try:
                port = parts.port
            except ValueError:
                port = -1
            # No userinfo or port: "https://sts.amazonaws.com@evil.com/" is addressed to evil.com,
            # and whatever parses the URL next must not be able to read it differently.
            plain = "@" not in parts.netloc and port is None and parts.netloc == parts.hostname
            allowed = parts.scheme == "https" and plain and bool(_STS_HOST.fullmatch(parts.netloc))
        if not allowed or parts.path not in ("", "/") or parts.query or parts.fragment:
            # Name the host (not the token) so a misconfigured client can be told what is wrong.
            raise AuthenticationError(
                f"{MODE}: the token is addressed to {parts.netloc[:100]!r}, which is not STS"
            )

    def _check_signature_block(self, headers: Mapping[str, str]) -> float:
        authorization = headers.get("authorization", "")
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=[^/,\s]+/\d{8}/[a-z0-9-]+/sts/aws4_request,\s*"
            r"SignedHeaders=([a-z0-9;-]+),\s*Signature=[0-9a-f]{64}",
            authorization,
        )
        if match is None:
            raise AuthenticationError(f"{MODE}: the token is not SigV4-signed for STS")
        signed = set(match.group(1).split(";"))
        if not {"host", "x-amz-date"} <= signed:
            raise AuthenticationError(f"{MODE}: the token must sign host and x-amz-date")
        if self.server_id is not None and (
            SERVER_ID_HEADER not in signed or headers.get(SERVER_ID_HEADER) != self.server_id
        ):
            raise AuthenticationError(
                f"{MODE}: the token was not made for this server (sign {SERVER_ID_HEADER}: "
                f"{self.server_id})"
            )
        try:
            signed_at = datetime.strptime(headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise AuthenticationError(f"{MODE}: the token has no readable X-Amz-Date") from None
        stamp = signed_at.replace(tzinfo=timezone.utc).timestamp()
        age = time.time() - stamp
        if age > MAX_TOKEN_AGE:
            raise AuthenticationError(f"{MODE}: the token expired (signed {int(age)}s ago)")
        if age < -MAX_CLOCK_AHEAD:
            raise AuthenticationError(f"{MODE}: the token is signed in the future")
        return stamp

    async def _ask_sts(self, url: str, headers: Mapping[str, str]) -> str:
        # Forward only what the signature covers (plus the signature itself); JSON if STS will.
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        forward = {name: headers[name] for name in signed if name in headers and name != "host"}
        forward["authorization"] = headers["authorization"]
        forward["accept"] = "application/json"
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.post(url, content=GET_CALLER_IDENTITY_BODY, headers=forward)
        except httpx.HTTPError as error:
            logger.error("aws-iam: cannot reach STS at %s: %s", urlsplit(url).netloc, error)
            raise EvaluatorUnavailable(f"{MODE}: cannot reach STS to verify the token") from None
        if response.status_code != 200:
            code = _sts_error_code(response.content)
            raise AuthenticationError(f"{MODE}: STS refused the token ({code})")
        arn = _caller_arn(response.content)
        if arn is None:
            raise EvaluatorUnavailable(f"{MODE}: STS answered without a caller ARN")
        return arn


def _lambda_iam_block(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    return iam if isinstance(iam, Mapping) else None


def _caller_arn(content: bytes) -> str | None:
    try:
        data = json.loads(content)
        result = data["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        return str(result["Arn"])
    except (ValueError, KeyError, TypeError):
        pass
    try:
        node = ElementTree.fromstring(content).find(".//{*}GetCallerIdentityResult/{*}Arn")
    except ElementTree.ParseError:
        return None
    return node.text.strip() if node is not None and node.text else None


def _sts_error_code(content: bytes) -> str:
    try:
        node = ElementTree.fromstring(content).find(".//{*}Code")
        if node is not None and node.text:
            return re.sub(r"[^A-Za-z0-9.]", "", node.text)[:80]
    except ElementTree.ParseError:
        pass
    try:
        code = json.loads(content)["Error"]["Code"]
        return re.sub(r"[^A-Za-z0-9.]", "", str(code))[:80]
    except (ValueError, KeyError, TypeError):
        return "no error code"
