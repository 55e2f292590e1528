"""Warn about files that look like secrets before they go into an image or a Lambda zip.

Deliberately simple, and documented in docs/deploy.md: a file is flagged by its name
(``.env``, ``*.pem``, ``*.key``, ``id_rsa``, ``credentials*``...) or by what its first MiB
holds (a PEM private key, an AWS access key ID or secret key, a Google service-account key).
It is a warning, not a refusal: ``--include`` chooses the files exactly.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SECRET_NAMES", "secret_findings"]

SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials*",
    "*credentials.json",
    "client_secret*.json",
    "service-account*.json",
    ".netrc",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
)
_CONTENT = (
    (re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), "a private key"),
    (re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key ID"),
    (re.compile(rb"(?i)aws_secret_access_key\s*[=:]"), "an AWS secret access key"),
    (re.compile(rb'"type"\s*:\s*"service_account"'), "a Google service-account key"),
)
_READ_BYTES = 1024 * 1024


def secret_findings(files: Iterable[tuple[str, Path]]) -> list[str]:
    """One line per ``(shown name, path)`` that looks like a secret, saying why.

    >>> secret_findings([("src/.env", Path("/nonexistent/.env"))])
    ['src/.env: its name looks like a secret (.env)']
    """
    findings = []
    for shown, path in files:
        name = path.name.lower()
        pattern = next((p for p in SECRET_NAMES if fnmatch.fnmatchcase(name, p)), None)
        if pattern is not None:
            findings.append(f"{shown}: its name looks like a secret ({pattern})")
            continue
        try:
            with path.open("rb") as handle:
                head = handle.read(_READ_BYTES)
        except OSError:
            continue
        for regex, what in _CONTENT:
            if regex.search(head):
                findings.append(f"{shown}: it contains what looks like {what}")
                break
    return findings
