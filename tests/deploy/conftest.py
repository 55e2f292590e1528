"""Fixtures shared by the container tests (test_containers_podman.py, test_repo_compose.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._podman import ensure_base_image, podman


@pytest.fixture(scope="session")
def base_image() -> Iterator[str]:
    """The local base image (built once per machine); skips or fails without podman & co."""
    yield ensure_base_image()
    # Multi-stage builds leave their untagged build stages behind; without this every run adds
    # ~700 MB to the machine's image store. The base image itself stays cached.
    podman("image", "prune", "--force")
