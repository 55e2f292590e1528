"""How one server setting is declared: its ``RK_*`` variable, flag, kind, help and the way its
default is shown.

``ServeSettings`` declares each field once with :func:`setting`; the ``rk serve`` options, the
reading of the environment and the tables in the docs are all generated from that.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Kind", "Section", "Setting", "described", "integer", "number", "seconds", "setting"]

Kind = Literal["value", "list", "repeat", "switch", "flag", "arguments"]
"""How a setting is given on the command line:

* ``value``: one value, ``--port 8000``;
* ``list``: one comma-separated value, ``--auth api-key,mtls``;
* ``repeat``: the flag once per value, ``--google-audience A --google-audience B``;
* ``switch``: on or off, ``--metrics/--no-metrics``;
* ``flag``: off unless given, ``--allow-unauthenticated``;
* ``arguments``: the command's arguments, ``rk serve TARGET...``.

In the environment every list (``list``, ``repeat``, ``arguments``) is separated by the
setting's ``separator`` or newlines, and switches and flags take true/false, yes/no, on/off, 1/0.
"""

Section = Literal["server", "auth"]
"""Where a setting is documented: docs/http-api.md (server) or docs/auth.md (auth)."""

_LISTS = ("list", "repeat", "arguments")
_SEPARATORS = {",": "Comma-separated", ";": "Semicolon-separated"}
_KEY = "reward_kit.setting"


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number")
    return value


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _word(text: str) -> str:
    return text.strip().lower()


def _splitter(separator: str) -> Callable[[str], tuple[str, ...]]:
    def split(text: str) -> tuple[str, ...]:
        parts = text.replace("\n", separator).split(separator)
        return tuple(part.strip() for part in parts if part.strip())

    return split


_METAVARS: dict[Callable[[str], Any], str] = {integer: "INTEGER", seconds: "SECONDS"}


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting of ``ServeSettings``, as :meth:`ServeSettings.describe` lists it."""

    name: str = ""  # the field's name, filled in by ServeSettings.describe()
    default: Any = None
    env: str
    help: str
    kind: Kind
    # "--flag"; None when the setting has no flag (the variable only: a secret on a command
    # line is visible to every user of the machine).
    flag: str | None
    parse: Callable[[str], Any]  # one environment value (or flag value) to the field's value
    choices: tuple[str, ...]
    separator: str
    shown: str  # the default as --help and the docs show it ("" shows none)
    metavar: str
    section: Section

    @property
    def description(self) -> str:
        """The help, and how a list is written: what ``--help`` and the docs both say."""
        parts = [self.help]
        if self.choices:
            which = "Any of" if self.kind in _LISTS else "One of"
            parts.append(f"{which}: {', '.join(self.choices)}.")
        separated = _SEPARATORS.get(self.separator, f"{self.separator!r}-separated")
        if self.kind == "list":
            parts.append(f"{separated}.")
        elif self.kind == "repeat":
            parts.append(f"Repeat the flag for more; the variable is {separated.lower()}.")
        return " ".join(parts)


def setting(
    default: Any,
    *,
    env: str,
    help: str,
    kind: Kind = "value",
    parse: Callable[[str], Any] = str,
    flag: str | None = "",
    choices: tuple[str, ...] = (),
    separator: str = ",",
    shown: str | None = None,
    metavar: str | None = None,
    section: Section = "server",
) -> Any:
    """A ``dataclasses.field`` for a ``ServeSettings`` setting, described by its metadata.

    ``flag`` defaults to ``--`` and the field's name with dashes; None means no flag. ``parse``
    reads one value of a ``value`` setting; lists are split on ``separator``, switches and
    flags read as booleans, and a choice is lowercased. ``shown`` is the default as a reader
    should see it ("one per core", "16 MiB"), derived from ``default`` when not given.
    """
    if kind in _LISTS:
        parser: Callable[[str], Any] = _splitter(separator)
    elif kind in ("switch", "flag"):
        parser = _bool
    elif choices:
        parser = _word  # checked against the choices by ServeSettings, whichever way it came
    else:
        parser = parse
    spec = Setting(
        env=env,
        help=help,
        kind=kind,
        flag=flag,
        parse=parser,
        choices=choices,
        separator=separator,
        shown=_shown(default, parser) if shown is None else shown,
        metavar=metavar or _metavar(kind, parser),
        section=section,
    )
    return dataclasses.field(default=default, metadata={_KEY: spec})


def described(field: dataclasses.Field[Any]) -> Setting:
    """The :class:`Setting` of a ``ServeSettings`` field, with its name, default and flag."""
    spec: Setting = field.metadata[_KEY]
    flag = spec.flag
    if flag == "":
        flag = "--" + field.name.replace("_", "-")
    return dataclasses.replace(spec, name=field.name, default=field.default, flag=flag)


def _metavar(kind: Kind, parser: Callable[[str], Any]) -> str:
    if kind == "list":
        return "VALUE,..."
    return _METAVARS.get(parser, "TEXT")


def _shown(default: Any, parser: Callable[[str], Any]) -> str:
    if default is None:
        return "none"
    if parser is seconds:
        return f"{default:g} s"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return ", ".join(default) if default else "none"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)
