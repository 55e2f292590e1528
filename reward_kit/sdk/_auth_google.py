"""Google ID tokens for evaluators behind Cloud Run IAM (or ``--auth google-iam``)."""

from __future__ import annotations

from typing import Any

import httpx

from .._extras import require
from ._credentials import TokenCredential, token_expiry

__all__ = ["GoogleIdToken"]


class GoogleIdToken(TokenCredential):
    """Send a Google-signed ID token for ``audience`` (default: the evaluator's origin, which
    is what Cloud Run expects), fetched with ``google.oauth2.id_token.fetch_id_token``.

    >>> EvaluatorClient("https://evaluator-abc-uc.a.run.app", auth=GoogleIdToken())
    ... # doctest: +SKIP

    Where the token comes from is google-auth's: ``GOOGLE_APPLICATION_CREDENTIALS`` (a service
    account file), else the metadata server (GCE, Cloud Run, GKE). Pass
    ``header="X-Serverless-Authorization"`` to leave ``Authorization`` to an API key.
    Tokens are cached per audience until a minute before they expire.
    """

    def __init__(self, audience: str | None = None, *, header: str = "Authorization") -> None:
        super().__init__(header=header)
        self.audience = audience
        self._modules()  # fail now, not at the first request, if the extra is missing

    @staticmethod
    def _modules() -> tuple[Any, Any]:
        # Looked up on use rather than kept on the instance: modules do not pickle.
        id_token = require("google.oauth2.id_token", extra="gcp", feature="GoogleIdToken")
        transport = require("google.auth.transport.requests", extra="gcp", feature="GoogleIdToken")
        return id_token, transport

    def _cache_key(self, request: httpx.Request) -> str:
        return self.audience or f"{request.url.scheme}://{request.url.netloc.decode()}"

    def _fetch(self, request: httpx.Request) -> tuple[str, float]:
        audience = self._cache_key(request)
        id_token, transport = self._modules()
        token = str(id_token.fetch_id_token(transport.Request(), audience))
        # Google ID tokens live an hour; without a readable exp, refetch after five minutes.
        return token, token_expiry(token) or self.clock() + 300

    def __repr__(self) -> str:
        return f"GoogleIdToken(audience={self.audience!r}, header={self.header!r})"
