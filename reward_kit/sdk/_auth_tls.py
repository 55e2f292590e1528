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

    >>> tls = MutualTLS("certs/client.pem", "certs/client-key.pem", "certs/ca.pem")
    ... # doctest: +SKIP
    >>> EvaluatorClient("https://127.0.0.1:8443", auth=tls)  # doctest: +SKIP

    The context goes to httpx as ``verify=``: httpx 0.28 silently drops ``cert=`` when
    ``verify`` is a path, so a context is the one form that always sends the certificate.
    With ``ca=None`` the system trust store checks the server. The files are read when the
    credential is made (so a wrong path fails at once) and again in a process it is
    unpickled in (an ``SSLContext`` does not pickle; the paths do).
    """

    def __init__(
        self,
        cert: str | os.PathLike[str],
        key: str | os.PathLike[str] | None = None,
        ca: str | os.PathLike[str] | None = None,
        *,
        password: str | None = None,
    ) -> None:
        self.cert = str(cert)
        self.key = None if key is None else str(key)
        self.ca = None if ca is None else str(ca)
        self._password = password
        self._context: ssl.SSLContext | None = self._load()

    def _load(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=self.ca)
            context.load_cert_chain(self.cert, self.key, self._password)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"cannot load the client certificate {self.cert!r} / key / CA: {error}"
            ) from None
        return context

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = self._load()
        return self._context

    def client_options(self) -> dict[str, Any]:
        return {"verify": self.context}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_context": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"MutualTLS(cert={self.cert!r}, ca={self.ca!r})"
