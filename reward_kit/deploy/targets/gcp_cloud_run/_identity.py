"""The Cloud Run service's runtime identity: a dedicated service account, never a default one.

A service deployed without a service account runs as the project's default compute account,
which holds Editor on most projects: reward code, and model code that gets out of a sandbox,
would act with it. So every deploy names one. Without ``--service-account`` it is
``rk-NAME@PROJECT.iam.gserviceaccount.com``, looked up and created (with no roles) when
missing; it then gets exactly what the deploy grants it (read access to its key secret).
Google's default accounts are refused even when named.

The IAM API is called over REST with google-auth's ``AuthorizedSession`` (no extra client
library), against the test fake's endpoint when one is set.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ...._extras import require
from ...._retry import backoff_delay
from ..._errors import DeployError
from ..._spec import Reporter
from ._clients import GcpClients, gcp_api

__all__ = [
    "account_email",
    "check_account",
    "default_account",
    "ensure_service_account",
    "retry_new_account",
]

T = TypeVar("T")
IAM_ENDPOINT = "https://iam.googleapis.com"
_EMAIL = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9][a-z0-9.-]*\.[a-z]+$")
# Accounts Google makes for a project; their roles are broad (Editor) in most projects.
_GOOGLE_DEFAULTS = re.compile(
    r"^(\d+-compute@developer\.gserviceaccount\.com"
    r"|[^@]+@appspot\.gserviceaccount\.com"
    r"|\d+@cloudservices\.gserviceaccount\.com"
    r"|\d+@cloudbuild\.gserviceaccount\.com)$"
)


def _account_id(name: str) -> str:
    """A 6-30 character account ID for deploy ``name`` (IAM's limits).

    >>> _account_id("math"), _account_id("ab")
    ('rk-math', 'rk-ab-run')
    """
    account = f"rk-{name}"
    if len(account) < 6:
        return f"{account}-run"
    if len(account) > 30:
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        return f"rk-{name[:20].rstrip('-')}-{digest}"
    return account


def account_email(account_id: str, project: str) -> str:
    """The email of ``account_id`` in ``project`` (domain-scoped projects included).

    >>> account_email("rk-math", "my-proj")
    'rk-math@my-proj.iam.gserviceaccount.com'
    """
    domain, _, bare = project.rpartition(":")
    host = f"{bare}.{domain}" if domain else bare
    return f"{account_id}@{host}.iam.gserviceaccount.com"


def default_account(name: str, project: str) -> str:
    """The dedicated runtime account rk deploy uses for service ``name`` when none is given."""
    return account_email(_account_id(name), project)


def check_account(email: str, option: str) -> str:
    """``email`` if it is a service account rk deploy may run as; else a ValueError.

    >>> check_account("rk-math@my-proj.iam.gserviceaccount.com", "service_account")
    'rk-math@my-proj.iam.gserviceaccount.com'
    """
    if not _EMAIL.match(email):
        raise ValueError(f"{option} {email!r} is not a service account email")
    if _GOOGLE_DEFAULTS.match(email):
        raise ValueError(
            f"{option} {email} is one of Google's default service accounts, "
            "which have Editor on most projects; anything the evaluator runs would act with it. "
            "Leave --service-account out (rk deploy makes rk-NAME@PROJECT.iam.gserviceaccount."
            "com with no roles) or name a dedicated account"
        )
    return email


def _call(clients: GcpClients, method: str, path: str, body: Any = None) -> Any:
    from google.api_core import exceptions

    transport = require(
        "google.auth.transport.requests", extra="gcp-deploy", feature="gcp-cloud-run"
    )
    session = transport.AuthorizedSession(clients.credentials)
    try:
        response = session.request(
            method, f"{clients.endpoint or IAM_ENDPOINT}/v1/{path}", json=body, timeout=60
        )
    finally:
        session.close()
    if response.status_code >= 400:
        raise exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
    return response.json()


def ensure_service_account(
    clients: GcpClients, project: str, email: str, name: str, reporter: Reporter
) -> bool:
    """Create ``email`` (no roles) unless it exists; True when it was made now."""
    from google.api_core import exceptions

    try:
        with gcp_api("iam", "GetServiceAccount"):
            _call(clients, "GET", f"projects/{project}/serviceAccounts/{email}")
        reporter.step(f"the service runs as {email}")
        return False
    except DeployError as error:
        if not isinstance(error.__cause__, exceptions.NotFound):
            raise
    reporter.step(f"creating service account {email} (no roles) for the service to run as")
    body = {
        "accountId": email.split("@", 1)[0],
        "serviceAccount": {
            "displayName": f"reward-kit evaluator {name}",
            "description": "managed-by: reward-kit. Runtime identity of one evaluator.",
        },
    }
    try:
        with gcp_api("iam", "CreateServiceAccount"):
            _call(clients, "POST", f"projects/{project}/serviceAccounts", body)
    except DeployError as error:
        # 403 over REST is Forbidden; PermissionDenied is the same answer's gRPC status.
        if not isinstance(error.__cause__, (exceptions.Forbidden, exceptions.PermissionDenied)):
            raise
        raise DeployError(
            f"{error} - the service needs a dedicated runtime account. Ask an administrator to "
            f"create it once (gcloud iam service-accounts create {body['accountId']} "
            f"--project {project}) and to grant you roles/iam.serviceAccountUser on it, or pass "
            "--service-account with another dedicated account"
        ) from error
    return True


def retry_new_account(
    call: Callable[[], T], email: str, *, fresh: bool, delay: float, attempts: int = 10
) -> T:
    """Run ``call``; while a just-created account is not yet visible to a service, retry,
    with backoff from ``delay`` up to 4x it (reward_kit._retry)."""
    for attempt in range(attempts):
        try:
            return call()
        except DeployError as error:
            unknown = email in str(error) and "does not exist" in str(error)
            if not fresh or not unknown or attempt + 1 == attempts:
                raise
            time.sleep(backoff_delay(attempt, base=delay, maximum=4 * delay))
    raise AssertionError("unreachable")
