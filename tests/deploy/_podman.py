"""Podman for the container tests: the environment it needs on this VM, and a local base image.

No registry is reachable, so the base image is made here: debootstrap (Debian's mirror is
reachable) then ``podman import``; it is cached in podman's storage on the machine and passed
to builds as BASE_IMAGE. Podman on this VM needs runc, small ulimits (containers.conf here) and
chroot isolation. The ``base_image`` fixture (tests/deploy/conftest.py) wraps
:func:`ensure_base_image`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..conftest import require_integration

BASE_IMAGE = "localhost/reward-kit-test-base:bookworm"
# What building the base image and running containers from it needs.
BASE_TOOLS = ("podman", "buildah", "runc", "debootstrap")
ENV = {
    **os.environ,
    "CONTAINERS_CONF": str(Path(__file__).with_name("containers.conf")),
    "BUILDAH_ISOLATION": "chroot",
}


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )


def ensure_base_image() -> str:
    """The Debian bookworm + python3 base image's tag, made once per machine."""
    require_integration(*BASE_TOOLS)
    if podman("image", "exists", BASE_IMAGE).returncode == 0:
        return BASE_IMAGE
    # About a minute, once per machine; the rootfs is deleted once imported.
    work = Path(tempfile.mkdtemp(prefix="rk-debootstrap-", dir="/var/tmp"))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "bookworm", str(work / "rootfs"), "http://deb.debian.org/debian"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        # The context manager waits for tar and closes its pipe.
        with subprocess.Popen(
            ["tar", "-C", str(work / "rootfs"), "-c", "."], stdout=subprocess.PIPE
        ) as tar:
            imported = subprocess.run(
                ["podman", "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_IMAGE],
                stdin=tar.stdout, env=ENV, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BASE_IMAGE
