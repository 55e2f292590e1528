"""The Google REST fake (``_gcp_fake.py``) answers the real client libraries as Google does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._gcp_fake import GoogleFake, serve_google_fake


@pytest.fixture
def google_fake() -> Iterator[GoogleFake]:
    yield from serve_google_fake()


def test_fake_errors_reach_the_real_client_as_google_exceptions(google_fake: GoogleFake) -> None:
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    client = run_v2.ServicesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": google_fake.endpoint},
    )
    with pytest.raises(exceptions.NotFound):
        client.get_service(name="projects/p/locations/us-central1/services/missing")
    assert google_fake.calls[0].query.get("$alt") == ["json;enum-encoding=int"]
