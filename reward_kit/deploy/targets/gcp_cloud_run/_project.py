"""The Google Cloud project when no flag, reward-kit.toml or ``$GOOGLE_CLOUD_PROJECT`` /
``$GCLOUD_PROJECT`` names one, in google-auth's order: the project of the
``$GOOGLE_APPLICATION_CREDENTIALS`` key file, ``$CLOUDSDK_CORE_PROJECT`` or gcloud's default
project, then the rest of Application Default Credentials (the metadata server...).

>>> import pathlib, tempfile
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> (home / "configurations").mkdir()
>>> _ = (home / "configurations" / "config_default").write_text("[core]\\nproject = my-proj-1\\n")
>>> gcloud_project({"CLOUDSDK_CONFIG": str(home)}).value
'my-proj-1'
"""

from __future__ import annotations

import configparser
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

from ...._errors import ConfigurationError
from ..._options import Given

__all__ = ["WHERE", "adc_project", "default_project", "gcloud_project", "key_file_project"]

# For the error that lists every place the project was looked for.
WHERE = (
    "use a $GOOGLE_APPLICATION_CREDENTIALS key file that names one, set $CLOUDSDK_CORE_PROJECT "
    "or gcloud's default project (`gcloud config set project ID`; read from "
    "$CLOUDSDK_CONFIG, else ~/.config/gcloud, configuration $CLOUDSDK_ACTIVE_CONFIG_NAME or the "
    "active one), or use Application Default Credentials that name one"
)


def default_project(environ: Mapping[str, str]) -> Given | None:
    """The key file's project, ``$CLOUDSDK_CORE_PROJECT``, gcloud's default project, else the
    Application Default Credentials' project: google-auth's order after the variables."""
    core = environ.get("CLOUDSDK_CORE_PROJECT", "").strip()
    return (
        key_file_project(environ)
        or (Given(core, "$CLOUDSDK_CORE_PROJECT", text=True) if core else None)
        or gcloud_project(environ)
        or adc_project()
    )


def key_file_project(environ: Mapping[str, str]) -> Given | None:
    """``project_id`` of the credentials file ``$GOOGLE_APPLICATION_CREDENTIALS`` names (a
    service account key), which google-auth puts before gcloud's project; None without one.
    A file that cannot be read is an error naming the variable, as it is for google-auth."""
    name = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not name:
        return None
    try:
        info = json.loads(Path(name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigurationError(
            f"gcp-cloud-run: $GOOGLE_APPLICATION_CREDENTIALS names {name}, which is not a "
            f"readable JSON credentials file ({error}); fix or unset it, or pass --project"
        ) from None
    project = info.get("project_id") if isinstance(info, dict) else None
    if not isinstance(project, str) or not project.strip():
        return None
    return Given(project.strip(), f"$GOOGLE_APPLICATION_CREDENTIALS ({name})", text=True)


def gcloud_project(environ: Mapping[str, str]) -> Given | None:
    """``[core] project`` of gcloud's active configuration, read from its files (no gcloud
    needed): ``$CLOUDSDK_CONFIG`` (default ``~/.config/gcloud``), configuration
    ``$CLOUDSDK_ACTIVE_CONFIG_NAME``, else the one named in ``active_config``, else
    ``default``. None when there is none; ``environ`` without a home finds none."""
    folder = _config_folder(environ)
    if folder is None:
        return None
    name = environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME") or _read(folder / "active_config")
    path = folder / "configurations" / f"config_{name or 'default'}"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        raise ConfigurationError(
            f"gcp-cloud-run: gcloud's configuration {path} cannot be read ({error}); fix it "
            "(`gcloud config configurations list`) or pass --project"
        ) from None
    project = parser.get("core", "project", fallback="").strip()
    return Given(project, f"gcloud's configuration {path}", text=True) if project else None


def adc_project() -> Given | None:
    """The project ``google.auth.default()`` returns with the Application Default Credentials
    (a service account key's project, gcloud's for ``gcloud auth application-default login``,
    the metadata server's on Google Cloud). None without credentials or google-auth."""
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError:
        return None
    with warnings.catch_warnings():
        # "end user credentials without a quota project": said again when the deploy uses them.
        warnings.simplefilter("ignore")
        try:
            _, project = google.auth.default()
        except DefaultCredentialsError:
            return None
    return Given(project, "Application Default Credentials", text=True) if project else None


def _config_folder(environ: Mapping[str, str]) -> Path | None:
    if environ.get("CLOUDSDK_CONFIG"):
        return Path(environ["CLOUDSDK_CONFIG"])
    if os.name == "nt":
        return Path(environ["APPDATA"], "gcloud") if environ.get("APPDATA") else None
    return Path(environ["HOME"], ".config", "gcloud") if environ.get("HOME") else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""
