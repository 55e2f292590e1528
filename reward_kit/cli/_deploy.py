"""``rk deploy SOURCE...``, ``rk deploy status NAME`` and ``rk deploy delete NAME``.

``deploy`` is a group whose default command is ``up``: ``rk deploy rewards.py --target ...`` is
``rk deploy up rewards.py --target ...``, while ``status`` and ``delete`` stay subcommands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from ._common import load_targets

__all__ = ["deploy_group"]

TARGET_NAMES = ("local", "gcp-cloud-run", "aws-lambda")
AUTH_NAMES = ("api-key", "google-iam", "aws-iam", "mtls", "none")


class DefaultGroup(click.Group):
    """A group that runs ``default`` when the first argument is not one of its commands."""

    default = "up"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


class _Printer:
    """Shows each step as it happens, on stderr (stdout keeps the result)."""

    def step(self, message: str) -> None:
        click.secho(f"-> {message}", err=True, fg="cyan")


def _where(function: Callable[..., Any]) -> Callable[..., Any]:
    """Options that say where a deployment lives (status and delete need them too)."""
    options = [
        click.option("--target", type=click.Choice(TARGET_NAMES), help="Where it runs."),
        click.option("--project", help="gcp-cloud-run: Google Cloud project ID."),
        click.option("--region", help="gcp-cloud-run / aws-lambda region."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
                     help="Config file [default: nearest reward-kit.toml or pyproject.toml]."),
        click.option("-o", "--option", "extra", multiple=True, metavar="KEY=VALUE",
                     help="Any other target option (e.g. -o docker_host=unix:///run/podman.sock)."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def _options(target: str | None, config_path: str | None, flags: Mapping[str, Any]) -> tuple[
    str, dict[str, Any]
]:  # fmt: skip
    from ..deploy._config import load_config, merge_options

    if target is None:
        raise click.UsageError("--target is required (local, gcp-cloud-run or aws-lambda)")
    config = load_config(target, path=Path(config_path) if config_path else None)
    extra = dict(flags)
    for item in extra.pop("extra", ()) or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--option")
        extra.setdefault(key.replace("-", "_"), value)
    return target, merge_options(config, extra)


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
@click.option("--auth", type=click.Choice(AUTH_NAMES), help="Auth mode. [default: api-key]")
@click.option("--requirements", type=click.Path(dir_okay=False, exists=True), help="pip file.")
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
    help="Who may call: serviceAccount:EMAIL (google-iam) or an IAM ARN (aws-iam).",
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
@click.option("--service-account", help="gcp-cloud-run: runtime service account email.")
@click.option("--repository", help="gcp-cloud-run: Artifact Registry repository [reward-kit].")
@click.option("--image", help="gcp-cloud-run: deploy this image instead of building one.")
@click.option("--reserved-concurrency", type=int, help="aws-lambda: reserved executions.")
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
    from ..deploy import DeploySpec
    from ..deploy._runner import get_target, prebuilt_artifacts, run_deploy

    target_name, options = _options(target, config_path, flags)
    name = name or options.pop("name", None)
    if not name:
        raise click.UsageError("--name is required (or set name under [deploy] in the config)")
    auth = auth or options.pop("auth", None) or "api-key"
    if isinstance(options.get("memory"), str) and str(options["memory"]).isdigit():
        options["memory"] = int(options["memory"])  # Lambda takes MB; Cloud Run takes "1Gi"
    if dry_run:
        options["dry_run"] = True
    spec = DeploySpec(
        name=name,
        sources=sources,
        auth=auth,  # type: ignore[arg-type]  # DeploySpec validates it
        requirements=_read_requirements(requirements, options.pop("requirements", None)),
        options=options,
    )
    folder = Path(out or options.get("out") or Path("build") / name)
    build = prebuilt_artifacts(Path(from_build)) if from_build else None
    result = run_deploy(
        spec, get_target(target_name), _Printer(), out=folder, dry_run=dry_run, build=build,
        load=load_targets,
    )  # fmt: skip
    if isinstance(result, Path):
        click.echo(f"plan: {result}")
        click.echo(f"artifacts: {folder}")
        return
    click.echo(f"deployed {name} to {target_name}")
    click.echo(f"  url:  {result.url}")
    click.echo(f"  auth: {result.auth}")
    key = result.details.get("api_key")
    if key:
        click.echo("  API key (shown once; only its hash is stored in the cloud):")
        click.echo(f"    export RK_API_KEY={key}")
    click.echo("\n# SDK:")
    click.echo(result.sdk_snippet)


def _read_requirements(path: str | None, configured: Any) -> tuple[str, ...]:
    lines: list[str] = []
    if path is not None:
        lines = Path(path).read_text().splitlines()
    elif isinstance(configured, list):
        lines = [str(item) for item in configured]
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@deploy_group.command("status")
@click.argument("name")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_command(name: str, target: str | None, config_path: str | None, as_json: bool,
                   **flags: Any) -> None:  # fmt: skip
    """Show where deployment NAME runs and whether it is ready."""
    from ..deploy._runner import get_target

    target_name, options = _options(target, config_path, flags)
    status = get_target(target_name).status(name, options)
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
    from ..deploy._runner import get_target

    target_name, options = _options(target, config_path, flags)
    if not yes:
        click.confirm(f"delete {name} from {target_name}?", abort=True)
    get_target(target_name).delete(name, options, _Printer())
    click.echo(f"deleted {name} from {target_name}")
