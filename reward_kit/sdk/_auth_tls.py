"""Mutual TLS on the client: an ``ssl.SSLContext`` with the client certificate loaded."""

from __future__ import annotations

import os
import ssl
from typing import Any

from .._errors import ConfigurationError
from ._credentials import Credential

__all__ = ["MutualTLS"]


class MutualTLS(Credential):
    """Present a client certificate; trust the server certificate signed by ``ca``.

    >>> tls = MutualTLS(cert="certs/client.pem", key="certs/client-key.pem", ca="certs/ca.pem")
    ... # doctest: +SKIP
    >>> EvaluatorClient("https://127.0.0.1:8443", auth=tls)  # doctest: +SKIP

    The context goes to httpx as ``verify=``: httpx 0.28 silently drops ``cert=`` when
    ``verify`` is a path, so a context is the one form that always sends the certificate.
    With ``ca=None`` the system trust store checks the server.
    """

    def __init__(
        self,
        *,
        cert: str | os.PathLike[str],
        key: str | os.PathLike[str] | None = None,
        ca: str | os.PathLike[str] | None = None,
        password: str | None = None,
    ) -> None:
        self.cert, self.ca = str(cert), None if ca is None else str(ca)
        try:
            context = ssl.create_default_context(cafile=self.ca)
            context.load_cert_chain(self.cert, None if key is None else str(key), password)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"cannot load the client certificate {self.cert!r} / key / CA: {error}"
            ) from None
        self.context = context

    def client_options(self) -> dict[str, Any]:
        return {"verify": self.context}

    def __repr__(self) -> str:
        return f"MutualTLS(cert={self.cert!r}, ca={self.ca!r})"
