"""The local target's options: ``-o KEY=VALUE`` and ``[deploy.local]``.

>>> LocalOptions(port=9000, network="host").health_timeout
90.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ..._options import ContainerOptions

__all__ = ["LocalOptions"]


class LocalOptions(ContainerOptions):
    """``port``: host port (published on 127.0.0.1); ``docker_host``: the engine's socket
    (default ``$DOCKER_HOST``, else Docker's); ``network``: ``bridge`` publishes the port,
    ``host`` shares the host network and binds 127.0.0.1; ``state_dir``: where the API key
    file (hashes only) is kept; ``health_timeout``: seconds to wait for /health."""

    target: ClassVar[str] = "local"
    environment: ClassVar[Mapping[str, tuple[str, ...]]] = {"docker_host": ("DOCKER_HOST",)}

    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    docker_host: str | None = None
    network: Literal["bridge", "host"] = "bridge"
    state_dir: str | None = None
    health_timeout: Annotated[float, Field(gt=0)] = 90.0
