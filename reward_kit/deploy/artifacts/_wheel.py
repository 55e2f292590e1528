"""A wheel of the running reward-kit, and the deterministic zip writer artifacts share.

The wheel is assembled from the *installed* package (its files plus the installed
``METADATA``), not built from a source tree: that is exactly the version running, it works
from an editable install and from site-packages alike, and it needs no build backend or
network.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from ..._errors import ConfigurationError
from ..._version import __version__

__all__ = ["build_self_wheel", "package_files", "write_deterministic_zip"]

# The zip format cannot store dates before 1980; a fixed stamp makes equal inputs equal bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo", ".so.tmp"}


def write_deterministic_zip(entries: Iterable[tuple[str, bytes, bool]], path: Path) -> None:
    """Write ``(name, data, executable)`` entries sorted by name with fixed times and modes.

    >>> write_deterministic_zip([("a.txt", b"hi", False)], Path("/tmp/rk-doc.zip"))
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data, executable in sorted(entries, key=lambda entry: entry[0]):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Regular file, 0755 or 0644; create_system=3 (Unix) so unzip honours the mode.
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.create_system = 3
            zf.writestr(info, data, compresslevel=9)


def package_files(root: Path, *, bytecode: bool = False) -> list[Path]:
    """Files under ``root`` worth shipping, sorted: no caches, and no bytecode unless asked."""
    skip_dirs = _SKIP_DIRS - {"__pycache__"} if bytecode else _SKIP_DIRS
    skip_suffixes = _SKIP_SUFFIXES - {".pyc"} if bytecode else _SKIP_SUFFIXES
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in skip_dirs for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in skip_suffixes:
            continue
        found.append(path)
    return found


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_self_wheel(dest: Path) -> Path:
    """Write ``reward_kit-<version>-py3-none-any.whl`` of the running package into ``dest``.

    >>> build_self_wheel(Path("wheels")).name  # doctest: +SKIP
    'reward_kit-0.1.0-py3-none-any.whl'
    """
    import reward_kit

    try:
        dist = metadata.distribution("reward-kit")
    except metadata.PackageNotFoundError:
        raise ConfigurationError(
            "reward-kit is not installed as a distribution (no METADATA found), so its wheel "
            "cannot be built: install it with `pip install -e .` or `pip install reward-kit`"
        ) from None
    if dist.version != __version__:
        raise ConfigurationError(
            f"the installed reward-kit metadata says {dist.version} but the code is "
            f"{__version__}: reinstall it (`pip install -e .`) before building"
        )
    package_dir = Path(reward_kit.__file__).resolve().parent
    entries: list[tuple[str, bytes, bool]] = []
    for path in package_files(package_dir):
        name = "reward_kit/" + path.relative_to(package_dir).as_posix()
        entries.append((name, path.read_bytes(), False))
    info_dir = f"reward_kit-{__version__}.dist-info"
    wheel_meta = (
        b"Wheel-Version: 1.0\nGenerator: reward-kit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entries.append((f"{info_dir}/METADATA", (dist.read_text("METADATA") or "").encode(), False))
    entries.append((f"{info_dir}/WHEEL", wheel_meta, False))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info_dir}/entry_points.txt", entry_points.encode(), False))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data, _ in sorted(entries):
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{info_dir}/RECORD", "", ""])
    entries.append((f"{info_dir}/RECORD", record.getvalue().encode(), False))
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"reward_kit-{__version__}-py3-none-any.whl"
    write_deterministic_zip(entries, wheel)
    return wheel
