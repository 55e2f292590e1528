"""The local target without a container engine: a clear error, and its plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward_kit._errors import ConfigurationError
from reward_kit.deploy import Artifacts, DeploySpec, LocalOptions, LocalTarget

from ..conftest import QUICKSTART


def test_no_engine_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("docker")
    socket = tmp_path / "nothing-here.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    spec = DeploySpec(name="quick", sources=(QUICKSTART,))
    with pytest.raises(ConfigurationError) as raised:
        LocalTarget().check(spec)
    message = raised.value.message
    assert f"no container engine is reachable at unix://{socket}" in message
    assert "podman system service" in message
    assert "DOCKER_HOST" in message


def test_plan_names_every_engine_call(tmp_path: Path) -> None:
    spec = DeploySpec(
        name="quick",
        sources=(QUICKSTART,),
        options=LocalOptions(port=18080, base_image="local/base"),
    )
    calls = LocalTarget().plan(spec, Artifacts(out_dir=tmp_path, docker_context=tmp_path / "ctx"))
    assert [call.method for call in calls] == [
        "images.build",
        "containers.remove",
        "containers.run",
    ]
    assert calls[0].request["buildargs"] == {"BASE_IMAGE": "local/base"}
    assert calls[2].request["port"] == 18080
