"""``rk deploy SOURCE...``, ``rk deploy status NAME`` and ``rk deploy delete NAME``.

``deploy`` is a group whose default command is ``up``: ``rk deploy rewards.py --target ...`` is
``rk deploy up rewards.py --target ...``, while ``status`` and ``delete`` stay subcommands.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._vocabulary import DEFAULT_AUTH
from ..deploy import AUTH_MODES, TARGET_NAMES
from ._common import load_targets

if TYPE_CHECKING:
    from ..deploy import ResolvedDeploy

__all__ = ["deploy_group"]


class DefaultGroup(click.Group):
    """A group that runs ``default`` when the first argument is not one of its commands."""

    default = "up"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


class _Printer:
    """Shows each step as it happens, on stderr (stdout keeps the result); warnings in red."""

    def step(self, message: str) -> None:
        if message.startswith("WARNING"):
            click.secho(f"!! {message}", err=True, fg="red", bold=True)
            return
        click.secho(f"-> {message}", err=True, fg="cyan")


class _Reserved(click.ParamType):  # type: ignore[type-arg]
    """A non-negative integer, or ``none`` for no reservation."""

    name = "N|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().lower()
        if text == "none":
            return "none"
        if not text.isdigit():
            self.fail(f"{value!r} is not a whole number or none", param, ctx)
        return int(text)


def _where(function: Callable[..., Any]) -> Callable[..., Any]:
    """Options that say where a deployment lives (status and delete need them too)."""
    options = [
        click.option("--target", type=click.Choice(TARGET_NAMES), help="Where it runs."),
        click.option("--project", help="gcp-cloud-run: Google Cloud project ID [default: "
                     "$GOOGLE_CLOUD_PROJECT, $CLOUDSDK_CORE_PROJECT, gcloud's, ADC's]."),
        click.option("--region", help="gcp-cloud-run / aws-lambda region."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
                     help="Config file [default: nearest reward-kit.toml or pyproject.toml]."),
        click.option("-o", "--option", "extra", multiple=True, metavar="KEY=VALUE",
                     help="Any other target option (e.g. -o docker_host=unix:///run/podman.sock)."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def _resolve(target: str | None, config_path: str | None, flags: Mapping[str, Any]) -> tuple[
    str, ResolvedDeploy
]:  # fmt: skip
    """The target's options: flags (and -o) > reward-kit.toml > environment > defaults."""
    from ..deploy import load_config, resolve_deploy

    if target is None:
        raise click.UsageError("--target is required (local, gcp-cloud-run or aws-lambda)")
    named = dict(flags)
    overrides = _overrides(named.pop("extra", ()) or ())
    config = load_config(path=Path(config_path) if config_path else None)
    # Errors name each option as it was typed: --invoker, --aws-allow-arn...
    labels = {p.name: p.opts[0] for p in click.get_current_context().command.params if p.name}
    resolved = resolve_deploy(
        target, flags=named, overrides=overrides, config=config, environ=os.environ, labels=labels
    )
    return target, resolved


def _overrides(items: tuple[str, ...]) -> dict[str, str]:
    """``-o KEY=VALUE`` pairs; the value is text, parsed by the option's type later."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--option")
        if key in overrides:
            raise click.BadParameter(f"-o {key} is given twice", param_hint="--option")
        overrides[key] = value
    return overrides


@click.group("deploy", cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def deploy_group() -> None:
    """Deploy reward files as an authenticated evaluator: rk deploy SOURCE... --target T --name N.

    Subcommands: `rk deploy status NAME --target T`, `rk deploy delete NAME --target T`;
    `rk deploy up --help` lists every deploy option. Defaults come from reward-kit.toml
    ([deploy] and [deploy.TARGET] tables; flags win). See docs/deploy.md.
    """


@deploy_group.command("up")
@click.argument("sources", nargs=-1, required=True)
@click.option("--name", help="Service / function name (2-50 of a-z, 0-9, -).")
@click.option("--auth", type=click.Choice(AUTH_MODES), help="Auth mode. [default: api-key]")
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    default=None,
    help="With --auth none on gcp-cloud-run / aws-lambda: yes, anyone on the internet may call it.",
)
@click.option("--requirements", type=click.Path(dir_okay=False, exists=True), help="pip file.")
@click.option(
    "--include",
    multiple=True,
    metavar="PATH",
    help="Bundle exactly these files/folders/globs (with the reward files) instead of every "
    "sibling .py file.",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=None,
    help="Install bubblewrap for the code rewards. [default: when a target uses them]",
)
@click.option("--dry-run", is_flag=True, help="Build artifacts and write plan.json; call no API.")
@click.option("--out", type=click.Path(file_okay=False), help="Artifacts folder [build/NAME].")
@click.option(
    "--from-build",
    type=click.Path(file_okay=False, exists=True),
    help="Deploy what `rk build --out DIR` made instead of building again.",
)
@click.option(
    "--invoker",
    "invokers",
    multiple=True,
    help="Who may call: serviceAccount:EMAIL (google-iam) or an IAM ARN (aws-iam); refused with "
    "api-key and none.",
)
@click.option("--rotate-key", is_flag=True, default=None, help="api-key: make a new key.")
@click.option("--memory", help="Cloud Run: 512Mi, 1Gi... Lambda: MB (128-10240).")
@click.option("--timeout", type=int, help="Request timeout in seconds.")
@click.option("--cpu", help="gcp-cloud-run: vCPUs per instance (1, 2, 4...).")
@click.option("--concurrency", type=int, help="gcp-cloud-run: requests per instance.")
@click.option("--min-instances", type=int, help="gcp-cloud-run: instances kept warm.")
@click.option("--max-instances", type=int, help="gcp-cloud-run: scaling ceiling.")
@click.option(
    "--ingress", type=click.Choice(["all", "internal", "internal-and-cloud-load-balancing"])
)
@click.option(
    "--service-account",
    help="gcp-cloud-run: runtime service account. [default: rk-NAME@PROJECT, made with no roles]",
)
@click.option("--repository", help="gcp-cloud-run: Artifact Registry repository [reward-kit].")
@click.option("--image", help="gcp-cloud-run: deploy this image instead of building one.")
@click.option(
    "--reserved-concurrency",
    type=_Reserved(),
    help="aws-lambda: executions reserved and capped, or none. [default: 10]",
)
@click.option(
    "--aws-allow-arn",
    "aws_allowed_arns",
    multiple=True,
    help="aws-iam: caller ARN pattern the server accepts [from --invoker].",
)
@click.option("--s3-bucket", help="aws-lambda: bucket for zips over 50 MB.")
@click.option("--architecture", type=click.Choice(["x86_64", "arm64"]), help="aws-lambda CPU.")
@click.option("--base-image", help="Base image of the generated Dockerfile.")
@_where
def up_command(sources: tuple[str, ...], name: str | None, auth: str | None,
               requirements: str | None, dry_run: bool, out: str | None,
               from_build: str | None, target: str | None,
               config_path: str | None, **flags: Any) -> None:  # fmt: skip
    """Build and deploy reward SOURCES (file.py, file.py:fn, pkg.mod:fn); re-running updates.

    Example: rk deploy rewards.py --target gcp-cloud-run --name math --project my-proj
    """
    from ..deploy import DeploySpec, get_target, prebuilt_artifacts, run_deploy

    target_name, resolved = _resolve(target, config_path, flags)
    defaults = resolved.defaults
    name = name or defaults.name
    if not name:
        raise click.UsageError("--name is required (or set name under [deploy] in the config)")
    spec = DeploySpec(
        name=name,
        sources=sources,
        auth=auth or defaults.auth or DEFAULT_AUTH,  # type: ignore[arg-type]  # DeploySpec checks it
        requirements=_read_requirements(requirements, defaults.requirements),
        options=resolved.options,
    )
    folder = Path(out or defaults.out or Path("build") / name)
    build = prebuilt_artifacts(Path(from_build)) if from_build else None
    chosen = get_target(target_name)
    result = run_deploy(
        spec, chosen, _Printer(), out=folder, dry_run=dry_run, build=build, load=load_targets,
    )  # fmt: skip
    if isinstance(result, Path):
        click.echo(f"plan: {result}")
        click.echo(f"artifacts: {folder}")
        return
    click.echo(f"deployed {name} to {target_name}")
    click.echo(f"  url:  {result.url}")
    if result.auth == "none" and chosen.public:
        click.secho("  auth: none (PUBLIC: anyone with the URL can call it)", fg="red", bold=True)
    else:
        click.echo(f"  auth: {result.auth}")
    key = result.details.get("api_key")
    if key:
        click.echo("  API key (shown once; only its hash is stored in the cloud):")
        click.echo(f"    export RK_API_KEY={key}")
    click.echo("\n# SDK:")
    click.echo(result.sdk_snippet)


def _read_requirements(path: str | None, configured: tuple[str, ...] | None) -> tuple[str, ...]:
    lines = Path(path).read_text().splitlines() if path is not None else list(configured or ())
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@deploy_group.command("status")
@click.argument("name")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_command(name: str, target: str | None, config_path: str | None, as_json: bool,
                   **flags: Any) -> None:  # fmt: skip
    """Show where deployment NAME runs and whether it is ready."""
    from ..deploy import get_target

    target_name, resolved = _resolve(target, config_path, flags)
    status = get_target(target_name).status(name, resolved.options)
    if as_json:
        click.echo(json.dumps(dict(status), indent=2, default=str))
        return
    for key, value in status.items():
        click.echo(f"{key}: {'-' if value is None else value}")


@deploy_group.command("delete")
@click.argument("name")
@_where
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_command(name: str, target: str | None, config_path: str | None, yes: bool,
                   **flags: Any) -> None:  # fmt: skip
    """Delete deployment NAME and what rk deploy made for it (service, secret, role...)."""
    from ..deploy import get_target

    target_name, resolved = _resolve(target, config_path, flags)
    if not yes:
        click.confirm(f"delete {name} from {target_name}?", abort=True)
    get_target(target_name).delete(name, resolved.options, _Printer())
    click.echo(f"deleted {name} from {target_name}")
