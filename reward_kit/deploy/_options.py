"""Deploy options: one strict pydantic model per target, resolved in one place.

Where a value comes from decides how it is read:

- ``reward-kit.toml`` holds TOML values, which have types already: a value must have the
  option's type (``rotate_key = "false"`` is an error, not ``bool("false")``).
- A flag, ``-o KEY=VALUE`` and an environment variable are text, parsed for the option:
  ``-o rotate_key=false`` is False, ``-o concurrency=8`` is 8, ``-o invokers=a,b`` two items.

Given in several places, a flag wins over reward-kit.toml, which wins over the environment,
which wins over what the target finds itself (gcp-cloud-run's project: gcloud's default, then
Application Default Credentials'), which wins over the default (:meth:`TargetOptions.resolve`).
Every error names the option, what it expects, and where the value came from; a required
option found nowhere names every place it was looked for.

    >>> TargetOptions.resolve({"sandbox": Given("no", "-o sandbox", text=True)}).sandbox
    False
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from .._errors import ConfigurationError

__all__ = [
    "BuildOptions",
    "ContainerOptions",
    "Expect",
    "Given",
    "Strings",
    "TargetOptions",
    "describe_error",
]

OptionsT = TypeVar("OptionsT", bound="TargetOptions")
# Where each value being validated came from, for the error message (set by resolve()).
_SOURCES: ContextVar[Mapping[str, str] | None] = ContextVar("_SOURCES", default=None)


class Given(NamedTuple):
    """One value of one option, with where it came from (``--region``, ``$AWS_REGION``...)."""

    value: Any
    source: str
    text: bool = False  # typed on a command line or read from the environment: parse it


@dataclass(frozen=True)
class Expect:
    """What an option expects, for error messages, when its type does not say it all."""

    text: str


def _as_tuple(value: Any) -> Any:
    # TOML arrays arrive as lists; the models keep tuples (hashable, frozen).
    return tuple(value) if isinstance(value, list) else value


# A list of strings: a TOML array, a repeated flag, or -o KEY=a,b.
Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple), Expect("a list of strings")]


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What the build step reads: the code files, the sandbox, and the artifact's platform;
    ``image`` is the image Kubernetes manifests name (default: the local tag)."""

    include: tuple[str, ...] | None = None
    sandbox: bool | None = None
    base_image: str | None = None
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    wheelhouse: bool = False
    image: str | None = None


class TargetOptions(BaseModel):
    """Options every target takes; each target's model adds its own.

    ``include`` lists the code files to bundle, exactly; ``sandbox`` installs bubblewrap for
    the code rewards (None: when a target uses them); ``allow_unauthenticated`` is the consent
    a public ``--auth none`` deploy needs (command line only, never reward-kit.toml).

    >>> TargetOptions(sandbox="yes")
    Traceback (most recent call last):
    reward_kit._errors.ConfigurationError: any target: sandbox must be true or false, got 'yes'
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    target: ClassVar[str] = "any target"
    # option -> environment variables that give it when no flag or file does (first set wins).
    environment: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # option -> where discover() looks for it, for the error when no source gives it.
    discovered: ClassVar[Mapping[str, str]] = {}

    include: Strings | None = None
    sandbox: bool | None = None
    allow_unauthenticated: bool = False

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            sources = _SOURCES.get()
            raise ConfigurationError(describe_error(type(self), error, sources)) from None

    @classmethod
    def resolve(
        cls: type[OptionsT],
        *layers: Mapping[str, Given],
        environ: Mapping[str, str] | None = None,
    ) -> OptionsT:
        """The options from ``layers`` (each holds only values that were given; the first
        layer with a key wins), then ``environ`` for what :attr:`environment` names."""
        chosen: dict[str, Given] = {}
        for layer in layers:
            for key, given in layer.items():
                chosen.setdefault(key, given)
        environ = environ or {}
        for key, names in cls.environment.items():
            name = next((name for name in names if environ.get(name)), None)
            if key not in chosen and name is not None:
                chosen[key] = Given(environ[name], f"${name}", text=True)
        for key in cls.discovered:
            if key not in chosen and (found := cls.discover(key, environ)) is not None:
                chosen[key] = found
        values = {key: _value(cls, key, given) for key, given in chosen.items()}
        token = _SOURCES.set({key: given.source for key, given in chosen.items()})
        try:
            return cls(**values)
        finally:
            _SOURCES.reset(token)

    @classmethod
    def discover(cls, key: str, environ: Mapping[str, str]) -> Given | None:
        """A value for ``key`` (one of :attr:`discovered`) from the target's own conventions,
        when no flag, file or variable gives one: a tool's configuration, the credentials.
        None when there is none."""
        return None

    @classmethod
    def coerce(
        cls: type[OptionsT], options: TargetOptions, environ: Mapping[str, str] | None = None
    ) -> OptionsT:
        """``options`` (any options model) as this model: what was set on it, then the
        environment (``environ``, default the process's), then the defaults."""
        label = type(options).__name__
        given = {key: Given(getattr(options, key), label) for key in options.model_fields_set}
        return cls.resolve(given, environ=os.environ if environ is None else environ)

    def build_options(self) -> BuildOptions:
        """What the build step needs from these options."""
        return BuildOptions(include=self.include, sandbox=self.sandbox)


def _value(model: type[TargetOptions], key: str, given: Given) -> Any:
    """The value to validate: text is parsed for the option's type, anything else kept."""
    field = model.model_fields.get(key)
    if not given.text or field is None or not isinstance(given.value, str):
        return given.value
    bare = _unwrap(field)[0]
    if bare is tuple:
        return tuple(part.strip() for part in given.value.split(",") if part.strip())
    if bare is str:
        return given.value
    try:
        return _text_adapter(model, key).validate_strings(given.value)
    except ValidationError as error:
        raise ConfigurationError(describe_error(model, error, {key: given.source}, key)) from None


@functools.cache
def _text_adapter(model: type[TargetOptions], key: str) -> TypeAdapter[Any]:
    # Lax, unlike the model: "8" reads as 8 and "false" as False. Only the conversion (and
    # the field's before-validators, e.g. "none" -> None): the model checks ranges after.
    field = model.model_fields[key]
    bare, metadata = _unwrap(field)
    before = tuple(meta for meta in metadata if isinstance(meta, BeforeValidator))
    nullable = bare if field.is_required() else bare | None
    annotated: Any = Annotated  # a type built at run time, which mypy cannot follow
    params = (nullable, *before)
    return TypeAdapter(annotated[params] if before else nullable)


def describe_error(
    model: type[BaseModel],
    error: ValidationError,
    sources: Mapping[str, str] | None = None,
    key: str | None = None,
) -> str:
    """One line per problem, each naming the option, what it expects and where it came from.

    ``key`` names the option when the error's location does not (one value validated alone).
    """
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else key
        where = f" (from {sources[name]})" if sources and name and name in sources else ""
        lines.append(_problem(model, name, item, where))
    return "; ".join(lines)


def _problem(model: type[BaseModel], key: str | None, item: Any, where: str) -> str:
    target = str(getattr(model, "target", model.__name__))
    if item["type"] == "value_error" or key is None:
        reason = item.get("ctx", {}).get("error", item["msg"])
        return f"{target}: {reason}{where}"
    if item["type"] == "missing":
        places = [
            f"pass --{key.replace('_', '-')}",
            f"set {key} under [deploy.{target}] in reward-kit.toml",
        ]
        names = getattr(model, "environment", {}).get(key, ())
        if names:
            places.append("set " + " or ".join(f"${name}" for name in names))
        found_by = getattr(model, "discovered", {}).get(key)
        if found_by:
            places.append(found_by)
        listed = ", ".join(places[:-1]) + (", or " if len(places) > 2 else " or ") + places[-1]
        return f"{target} needs a {key.replace('_', ' ')}: {listed}"
    if item["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"{target}: {key}{where} is not an option of {target}; its options: {known}"
    expected = _expected(model.model_fields[key])
    return f"{target}: {key} must be {expected}, got {item['input']!r}{where}"


def _expected(field: FieldInfo) -> str:
    """``an integer 1-1000``, ``true or false``, ``one of a, b``: from the field's type."""
    bare, metadata = _unwrap(field)
    for meta in metadata:
        if isinstance(meta, Expect):
            return meta.text
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    above = next((m.gt for m in metadata if isinstance(m, annotated_types.Gt)), None)
    if bare is bool:
        return "true or false"
    if bare is int:
        return f"an integer {low}-{high}" if low is not None and high is not None else "an integer"
    if bare is float:
        return f"a number above {above}" if above is not None else "a number"
    if get_origin(bare) is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(bare))
    if bare is tuple:
        return "a list of strings"
    return "a string"


def _unwrap(field: FieldInfo) -> tuple[Any, list[Any]]:
    """The field's type without ``| None`` and ``Annotated`` (a tuple type as ``tuple``),
    and every piece of metadata found on the way."""
    annotation: Any = field.annotation
    metadata = list(field.metadata)
    while True:
        if get_origin(annotation) is Annotated:
            metadata += annotation.__metadata__
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            rest = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(rest) != 1:
                return annotation, metadata
            annotation = rest[0]
        else:
            return (tuple if get_origin(annotation) is tuple else annotation), metadata


class ContainerOptions(TargetOptions):
    """Options of the targets that deploy a Docker build context."""

    base_image: str | None = None

    def build_options(self) -> BuildOptions:
        return BuildOptions(include=self.include, sandbox=self.sandbox, base_image=self.base_image)
