"""Google IAM: a Google-signed OIDC ID token in ``X-Serverless-Authorization`` or
``Authorization`` (``Bearer``), verified with google-auth against Google's certs."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import anyio.to_thread
from starlette.requests import HTTPConnection

from ..._errors import (
    AuthenticationError,
    ConfigurationError,
    EvaluatorUnavailable,
    PermissionDenied,
)
from ..._extras import require
from .._settings import GOOGLE_CERTS_URL, GOOGLE_ISSUERS
from ._base import Identity, bearer_token

__all__ = ["GoogleIamAuthenticator"]

logger = logging.getLogger("reward_kit.auth")

MODE = "google-iam"


class _CachedResponse:
    """The slice of ``google.auth.transport.Response`` that ``id_token._fetch_certs`` reads."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.data = data


class _CertsCache:
    """google-auth fetches the certs URL on every ``verify_token`` call; this transport wrapper
    serves it from memory for ``Cache-Control: max-age`` (bounded), so verification costs no
    network round trip per request."""

    MIN_TTL, MAX_TTL, DEFAULT_TTL = 60.0, 6 * 3600.0, 300.0
    # A token naming an unknown key id forces a refetch (Google rotated keys) at most this often,
    # so made-up key ids cannot turn requests into fetches.
    REFETCH_FLOOR = 30.0

    def __init__(self, url: str) -> None:
        transport = require(
            "google.auth.transport.requests", extra="gcp", feature="google-iam auth"
        )
        self.url = url
        self._request = transport.Request()
        self._lock = threading.Lock()
        self._cached: _CachedResponse | None = None
        self._fetched_at = 0.0
        self._expires_at = 0.0

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        if url != self.url or method != "GET":
            return self._request(url, method=method, **kwargs)
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now >= self._expires_at:
                self._refresh(now)
            return self._cached

    def _refresh(self, now: float) -> None:
        response = self._request(self.url, method="GET", timeout=10)
        cached = _CachedResponse(response.status, response.headers, response.data)
        if cached.status == 200:
            self._cached, self._fetched_at = cached, now
            self._expires_at = now + self._ttl(cached.headers)
        elif self._cached is None:
            self._cached = cached  # let google-auth report the failed fetch

    def _ttl(self, headers: Mapping[str, str]) -> float:
        for part in headers.get("cache-control", headers.get("Cache-Control", "")).split(","):
            name, _, value = part.strip().partition("=")
            if name.lower() == "max-age" and value.isdigit():
                return min(self.MAX_TTL, max(self.MIN_TTL, float(value)))
        return self.DEFAULT_TTL

    def known_key_ids(self) -> set[str]:
        if self._cached is None or self._cached.status != 200:
            return set()
        try:
            certs = json.loads(self._cached.data)
        except ValueError:
            return set()
        if isinstance(certs, dict) and isinstance(certs.get("keys"), list):
            return {str(k.get("kid")) for k in certs["keys"] if isinstance(k, dict)}
        return set(certs) if isinstance(certs, dict) else set()

    def refetch_for(self, kid: str) -> None:
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at >= self.REFETCH_FLOOR
            if self._cached is not None and kid not in self.known_key_ids() and stale:
                self._expires_at = now  # next call refetches


def _segment(text: str) -> Any:
    padded = text + "=" * (-len(text) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, only to word error messages and pick keys; nothing is trusted."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthenticationError(f"{MODE}: the bearer token is not a JWT")
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AuthenticationError(f"{MODE}: the bearer token is not a decodable JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthenticationError(f"{MODE}: the bearer token is not a decodable JWT")
    return header, claims


def _when(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(timestamp), tz=timezone.utc).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return "an unreadable time"


class GoogleIamAuthenticator:
    """Accepts Google-signed ID tokens whose ``aud`` is one of ``audiences``.

    >>> auth = GoogleIamAuthenticator(audiences=["https://evaluator-abc.a.run.app"])
    >>> auth.issuers
    ('accounts.google.com', 'https://accounts.google.com')

    ``certs_url`` may serve a JWKS or a ``{kid: PEM}`` map (both Google formats). google-auth's
    ``verify_token`` checks signature, audience and expiry but not the issuer, so that is
    checked here, as is the optional ``allowed_emails`` list (shell-style patterns).
    """

    mode = MODE

    def __init__(
        self,
        *,
        audiences: Iterable[str],
        certs_url: str = GOOGLE_CERTS_URL,
        issuers: Iterable[str] = GOOGLE_ISSUERS,
        allowed_emails: Iterable[str] = (),
        clock_skew: int = 10,
    ) -> None:
        self.audiences = list(audiences)
        if not self.audiences:
            raise ConfigurationError(
                "google-iam needs at least one audience (--google-audience, usually the "
                "service URL): without one, a token minted for any other service would pass"
            )
        self.issuers = tuple(issuers)
        self.allowed_emails = tuple(allowed_emails)
        self.clock_skew = clock_skew
        self._id_token = require("google.oauth2.id_token", extra="gcp", feature="google-iam auth")
        self._google_errors = require("google.auth.exceptions", extra="gcp", feature="google-iam")
        self._certs = _CertsCache(certs_url)
        try:  # PyJWT verifies the JWKS form; its errors are not ValueErrors.
            import jwt

            self._jwt_error: type[Exception] = jwt.PyJWTError
        except ImportError:  # pragma: no cover - only the PEM form works without PyJWT
            self._jwt_error = ValueError
        if not self.allowed_emails:
            logger.warning(
                "google-iam: no email allow-list; any Google account can mint a token for %s",
                ", ".join(self.audiences),
            )

    @staticmethod
    def presented_token(connection: HTTPConnection) -> str | None:
        # Cloud Run reads X-Serverless-Authorization first, leaving Authorization to the app.
        return bearer_token(connection, "x-serverless-authorization") or bearer_token(connection)

    async def authenticate(self, connection: HTTPConnection) -> Identity | None:
        token = self.presented_token(connection)
        if token is None:
            return None
        header, _ = _unverified(token)
        if header.get("kid") is not None:
            self._certs.refetch_for(str(header["kid"]))
        # google-auth is synchronous and may fetch the certs: keep it off the event loop.
        claims = await anyio.to_thread.run_sync(self._verify, token)
        return self._authorize(claims)

    def _verify(self, token: str) -> Mapping[str, Any]:
        _, unverified = _unverified(token)
        transport_error = self._google_errors.TransportError
        try:
            claims: Mapping[str, Any] = self._id_token.verify_token(
                token,
                self._certs,
                audience=self.audiences,
                certs_url=self._certs.url,
                clock_skew_in_seconds=self.clock_skew,
            )
        except transport_error as error:
            logger.error(
                "google-iam: cannot fetch signing keys from %s: %s", self._certs.url, error
            )
            raise EvaluatorUnavailable(f"{MODE}: cannot fetch Google's signing keys") from None
        except Exception as error:  # every verification failure is a 401
            raise AuthenticationError(f"{MODE}: {self._reason(error, unverified)}") from None
        return claims

    def _reason(self, error: Exception, claims: Mapping[str, Any]) -> str:
        # Library messages can quote the token, so they are reworded, never passed on.
        name, text = type(error).__name__, str(error).lower()
        if "expired" in name.lower() or "expired" in text:
            return f"the token expired at {_when(claims.get('exp'))}"
        if "audience" in name.lower() or "audience" in text:
            return (
                f"the token is for audience {str(claims.get('aud'))[:200]!r}, "
                f"this evaluator accepts {', '.join(self.audiences)}"
            )
        if "immature" in name.lower() or "too early" in text:
            return "the token is not valid yet (iat/nbf in the future)"
        if "signature" in name.lower() or "signature" in text:
            return "the token's signature does not verify against Google's keys"
        if "key" in text or "certificate for key id" in text or "PyJWKClient" in name:
            return "the token is signed by a key Google does not publish"
        if isinstance(error, self._jwt_error | ValueError | self._google_errors.GoogleAuthError):
            return "the token is malformed or does not verify"
        logger.debug("google-iam: unexpected %s while verifying a token", name)
        return "the token could not be verified"

    def _authorize(self, claims: Mapping[str, Any]) -> Identity:
        issuer = claims.get("iss")
        if issuer not in self.issuers:
            raise AuthenticationError(
                f"{MODE}: the token was issued by {str(issuer)[:200]!r}, not by Google "
                f"({', '.join(self.issuers)})"
            )
        if not isinstance(claims.get("exp"), int | float):
            # PyJWT (the JWKS path) only checks exp when present.
            raise AuthenticationError(f"{MODE}: the token has no expiry")
        if claims["exp"] + self.clock_skew < time.time():
            raise AuthenticationError(f"{MODE}: the token expired at {_when(claims['exp'])}")
        email = claims.get("email") if claims.get("email_verified") in (True, "true") else None
        if self.allowed_emails:
            if not isinstance(email, str):
                raise PermissionDenied(f"{MODE}: the token carries no verified email")
            if not any(fnmatch.fnmatchcase(email, p) for p in self.allowed_emails):
                raise PermissionDenied(f"{MODE}: {email} is not on this evaluator's allow-list")
        subject = email if isinstance(email, str) else f"sub:{claims.get('sub')}"
        return Identity(mode=MODE, subject=subject, details={"aud": claims.get("aud")})
