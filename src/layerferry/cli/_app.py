"""The Typer app, its global options, and the one place errors become a line and an exit code."""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import typer

from ..archive.limits import Limits
from ..errors import EXIT_INTERRUPTED, LayerferryError, UsageError
from ..settings import Settings
from ._render import ConsoleReporter

app = typer.Typer(
    name="layerferry",
    help="Move a container's state between Docker hosts without a registry.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


@dataclass
class Globals:
    debug: bool
    json: bool
    quiet: bool
    settings: Settings
    reporter: ConsoleReporter

    def emit(self, summary: dict[str, Any]) -> None:
        if self.json:
            sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")

    def limits(self, max_expansion: int | None) -> Limits:
        if max_expansion is None:
            return Limits()
        if max_expansion < 1:
            raise UsageError("--max-expansion must be a positive ratio, e.g. 1000")
        return Limits(expansion_ratio=max_expansion)


def limits_option() -> Any:
    return typer.Option(
        None,
        "--max-expansion",
        envvar="LAYERFERRY_MAX_EXPANSION",
        help="Refuse input that decompresses to more than RATIO times its size "
        f"(default {Limits().expansion_ratio}, beyond the first GiB).",
        metavar="RATIO",
    )


_DEBUG = {"on": False}


@app.callback()
def _globals(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on standard output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on standard error."),
    ssh_config: Path | None = typer.Option(
        None,
        "--ssh-config",
        envvar="LAYERFERRY_SSH_CONFIG",
        help="An ssh_config file to use instead of ~/.ssh/config.",
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        envvar="LAYERFERRY_CACHE_DIR",
        help="Where compressed layers are cached.",
    ),
) -> None:
    _DEBUG["on"] = debug
    ctx.obj = Globals(
        debug=debug,
        json=json_out,
        quiet=quiet,
        settings=Settings.from_env(ssh_config=ssh_config, cache_dir=cache_dir),
        reporter=ConsoleReporter(quiet=quiet),
    )


def run(application: typer.Typer) -> int:
    """Run the CLI; a :class:`LayerferryError` is one line on stderr and its exit code."""
    command = typer.main.get_command(application)
    try:
        command.main(standalone_mode=False, prog_name="layerferry")
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        sys.stderr.write("layerferry: interrupted\n")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        sys.stderr.write("layerferry: interrupted\n")
        return EXIT_INTERRUPTED
    except LayerferryError as exc:
        if _DEBUG["on"]:
            traceback.print_exc()
        sys.stderr.write(f"layerferry: error: {exc}\n")
        if exc.hint:
            sys.stderr.write(f"  hint: {exc.hint}\n")
        return exc.exit_code
    except Exception as exc:  # a bug: say so in one line unless --debug
        if _DEBUG["on"]:
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"layerferry: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n"
            )
        return 70
    return 0


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_object(Globals)
    assert obj is not None
    return obj
