"""The Typer app, its global options, and the one place errors become a line and an exit code."""

from __future__ import annotations

import errno
import json
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import typer

from .. import __version__
from ..archive.limits import Limits
from ..errors import EXIT_INTERRUPTED, LayerferryError, UsageError
from ..settings import Settings
from ._render import ConsoleReporter

app = typer.Typer(
    name="layerferry",
    help="Move a container's state between Docker hosts, without a registry or through one.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


@dataclass
class Globals:
    """What the global options decided; filled by the callback, read by verbs and by :func:`run`."""

    debug: bool = False
    json: bool = False
    quiet: bool = False
    configured: Settings | None = None
    console: ConsoleReporter | None = None
    emitted: bool = False

    @property
    def settings(self) -> Settings:
        assert self.configured is not None, "the global callback has not run"
        return self.configured

    @property
    def reporter(self) -> ConsoleReporter:
        assert self.console is not None, "the global callback has not run"
        return self.console

    def emit(self, summary: dict[str, Any]) -> None:
        if self.json:
            self.emitted = True
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


_GLOBAL_FLAGS = {"--debug", "--json", "--quiet", "-q", "--ssh-config", "--cache-dir", "--version"}


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"layerferry {__version__}\n")
        raise typer.Exit()


@app.callback()
def _globals(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on standard output."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only warnings and errors on standard error."
    ),
    ssh_config: Path | None = typer.Option(
        None,
        "--ssh-config",
        envvar="LAYERFERRY_SSH_CONFIG",
        show_default=False,
        help="An ssh_config file to use instead of ~/.ssh/config.",
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        envvar="LAYERFERRY_CACHE_DIR",
        show_default=False,
        help="Where compressed layers are cached.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Global options go before the verb: layerferry --json send …"""
    state = ctx.find_object(Globals)
    if state is None:
        state = Globals()
        ctx.obj = state
    state.debug, state.json, state.quiet = debug, json_out, quiet
    state.configured = Settings.from_env(ssh_config=ssh_config, cache_dir=cache_dir)
    state.console = ConsoleReporter(quiet=quiet)


def run(application: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`LayerferryError` is one line on stderr and its exit code.

    With ``--json`` a failure is also a JSON object on stdout (unless a summary was printed).
    """
    state = Globals()
    command = typer.main.get_command(application)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        returned = command.main(args=argv, standalone_mode=False, prog_name="layerferry", obj=state)
        if returned == EXIT_INTERRUPTED:  # Typer turns Ctrl-C into this return value
            sys.stderr.write("layerferry: interrupted\n")
            return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.NoSuchOption as exc:
        exc.show()
        if exc.option_name in _GLOBAL_FLAGS:
            sys.stderr.write(
                f"  hint: global options go before the verb: layerferry {exc.option_name} VERB …\n"
            )
        return 2
    except click.ClickException as exc:
        exc.show()
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.stderr.write("layerferry: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            if state.debug:
                traceback.print_exc()
            sys.stderr.write(
                f"layerferry: error: {exc.strerror or exc}: {exc.filename or 'output'}\n"
            )
            return 1
        # The reader went away (`save -o - | head`): end quietly, as pipeline tools do.
        _silence_stdout()
        return 128 + 13
    except LayerferryError as exc:
        if state.debug:
            traceback.print_exc()
        sys.stderr.write(f"layerferry: error: {exc}\n")
        if exc.hint:
            sys.stderr.write(f"  hint: {exc.hint}\n")
        if state.json and not state.emitted:
            error = {
                "message": str(exc),
                "exit_code": exc.exit_code,
                "kind": type(exc).__name__,
                "hint": exc.hint,
            }
            sys.stdout.write(json.dumps({"error": error}, indent=2, sort_keys=True) + "\n")
        return exc.exit_code
    except Exception as exc:  # a bug: say so in one line unless --debug
        if state.debug:
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"layerferry: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n"
            )
        return 70
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM is handled like Ctrl-C, so partial files and remote jobs are cleaned up."""
    raise KeyboardInterrupt


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_object(Globals)
    assert obj is not None
    return obj
