"""Dockerfile-style changes (``-c``): one validator for both commit paths, run before anything.

Every change is checked here, the same way whichever path commits: the engine's commit (given
the changes as text) or layerferry's own layer (``--exclude``, ``--squash``; the changes applied
to the image config by :func:`apply_changes`). A value the engine would refuse late (``ENV A``,
``EXPOSE abc``, ``LABEL c``), or write into an invalid config on our own path, is a
:class:`UsageError` before any work.

CMD and ENTRYPOINT are built in exec (JSON) form: from ``--cmd-json``/``--entrypoint-json``,
from a JSON list in ``-c``, or converted from shell form when that is unambiguous (plain words,
no quotes, variables or shell operators). Other shell form is refused unless asked for
(``shell_form=True``): the engine would wrap it in ``/bin/sh -c`` and the process would no
longer be PID 1 (case C25).

STOPSIGNAL is not a change the engine's commit takes (Docker 20.10: "not a valid change
command"); it is applied by layerferry (see :func:`engine_cannot`), as are CMD/ENTRYPOINT
values the engine's commit would replace with the container's (it fills an empty Cmd and an
empty Entrypoint from the container).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import signal
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..reporting import Reporter

ENGINE_INSTRUCTIONS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
)
"""What the engine's commit takes as changes (Docker 20.10)."""
OWN_INSTRUCTIONS = ("STOPSIGNAL",)
"""What layerferry applies itself: the commit then builds its own layer."""
INSTRUCTIONS = frozenset(ENGINE_INSTRUCTIONS + OWN_INSTRUCTIONS)
EXEC_FORM = {"CMD", "ENTRYPOINT"}
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9_./:=@%+,-]+(?: +[A-Za-z0-9_./:=@%+,-]+)*")
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?", re.IGNORECASE)
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_NS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_VAR = re.compile(
    r"\\\$|\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_HEALTH_OPTIONS = {
    "--interval": "Interval",
    "--timeout": "Timeout",
    "--start-period": "StartPeriod",
}


@dataclass(frozen=True)
class Change:
    keyword: str
    text: str
    """The value as the engine reads it (JSON for exec form)."""
    argv: tuple[str, ...] | None = None
    """CMD/ENTRYPOINT in exec form (None: shell form, kept on request)."""

    def engine_text(self) -> str:
        return f"{self.keyword} {self.text}"


def json_argv(text: str, option: str) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r} is not JSON", hint='e.g. \'["tini", "--"]\'') from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{option} {text!r} must be a JSON list of strings")
    return tuple(value)


def _exec_change(keyword: str, rest: str, shell_form: bool, reporter: Reporter) -> Change:
    if rest.startswith("["):
        argv = json_argv(rest, keyword)
        return Change(keyword, json.dumps(list(argv)), argv)
    if _PLAIN_WORDS.fullmatch(rest):
        argv = tuple(rest.split())
        reporter.step(f"{keyword} {rest}: shell form taken as exec form {json.dumps(list(argv))}")
        return Change(keyword, json.dumps(list(argv)), argv)
    if not shell_form:
        raise UsageError(
            f"{keyword} {rest} is shell form: the engine would wrap it in /bin/sh -c, so the "
            "process would no longer be PID 1 and signals would break",
            hint=f"give it as a JSON list (--{keyword.lower()}-json '[\"…\"]'), "
            "or pass --shell-form to keep it as it is",
        )
    reporter.warn(f"{keyword} {rest} kept in shell form (runs under /bin/sh -c) as asked")
    return Change(keyword, rest)


def parse_changes(
    changes: list[str],
    reporter: Reporter,
    *,
    entrypoint_json: str | None = None,
    cmd_json: str | None = None,
    shell_form: bool = False,
) -> list[Change]:
    """Every change checked (instruction and value) before anything runs; exec form for
    CMD/ENTRYPOINT. The one validator of both commit paths."""
    out: list[Change] = []
    for raw in changes:
        keyword, _, rest = raw.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in INSTRUCTIONS:
            raise UsageError(
                f"unsupported change {raw!r}",
                hint="one of " + ", ".join(sorted(INSTRUCTIONS)),
            )
        if not rest:
            raise UsageError(f"change {raw!r} has no value")
        if keyword in EXEC_FORM:
            out.append(_exec_change(keyword, rest, shell_form, reporter))
        else:
            _check(keyword, rest)
            out.append(Change(keyword, rest))
    for keyword, text in (("ENTRYPOINT", entrypoint_json), ("CMD", cmd_json)):
        if text is None:
            continue
        if any(c.keyword == keyword for c in out):
            raise UsageError(f"{keyword} given twice (-c and --{keyword.lower()}-json)")
        argv = json_argv(text, f"--{keyword.lower()}-json")
        out.append(Change(keyword, json.dumps(list(argv)), argv))
    return out


# -- values -----------------------------------------------------------------------------------------
def _bad(keyword: str, text: str, why: str, hint: str | None = None) -> UsageError:
    return UsageError(f"change '{keyword} {text}': {why}", hint=hint)


def _words(keyword: str, text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise _bad(keyword, text, f"{exc}") from exc


def _pairs(text: str, keyword: str) -> list[tuple[str, str]]:
    """``KEY=VALUE …`` (quotes as a shell reads them), or the legacy ``KEY value with spaces``."""
    words = _words(keyword, text)
    if words and "=" not in words[0]:
        key, _, value = text.partition(" ")
        if not value.strip():
            raise _bad(keyword, text, "expected KEY=VALUE", hint=f"e.g. {keyword} {key}=value")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise _bad(keyword, text, f"{word!r} is not KEY=VALUE")
        if not key:
            raise _bad(keyword, text, f"{word!r} has an empty name")
        pairs.append((key, value))
    return pairs


def _ports(text: str) -> list[str]:
    out: list[str] = []
    for word in text.split():
        match = _PORT.fullmatch(word)
        if match is None:
            raise _bad(
                "EXPOSE",
                text,
                f"{word!r} is not a port",
                hint="e.g. EXPOSE 80 53/udp 8000-8010/tcp",
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= 65535:
            raise _bad("EXPOSE", text, f"{word!r}: ports are 1-65535, a range low-high")
        proto = (match.group(3) or "tcp").lower()
        out += [f"{port}/{proto}" for port in range(low, high + 1)]
    return out


def _volumes(text: str) -> list[str]:
    paths = list(json_argv(text, "VOLUME")) if text.startswith("[") else text.split()
    if not paths or any(not p.strip() for p in paths):
        raise _bad("VOLUME", text, "a volume path cannot be empty")
    return paths


def _stop_signal(text: str) -> str:
    if text.isdigit():
        ok = 1 <= int(text) <= 64
    else:
        name = text.upper().removeprefix("SIG")
        ok = f"SIG{name}" in signal.Signals.__members__ or bool(
            re.fullmatch(r"RTMIN\+\d+|RTMAX-\d+", name)
        )
    if not ok:
        raise _bad("STOPSIGNAL", text, "not a signal", hint="e.g. STOPSIGNAL SIGTERM (or 15)")
    return text


def _duration_ns(keyword: str, text: str, option: str, value: str) -> int:
    if not _DURATION.fullmatch(value):
        raise _bad(keyword, text, f"{option}={value} is not a duration", hint="e.g. 30s, 1m30s")
    ns = int(sum(float(n) * _NS[unit] for n, unit in _DURATION_PART.findall(value)))
    if ns < 10**6:
        raise _bad(keyword, text, f"{option}={value}: at least 1ms")
    return ns


def _healthcheck(text: str) -> dict[str, Any]:
    words = text.split(None)
    if [w.upper() for w in words] == ["NONE"]:
        return {"Test": ["NONE"]}
    health: dict[str, Any] = {}
    rest = text
    while rest.startswith("--"):
        option_word, _, rest = rest.partition(" ")
        rest = rest.strip()
        option, sep, value = option_word.partition("=")
        if option in _HEALTH_OPTIONS and sep:
            health[_HEALTH_OPTIONS[option]] = _duration_ns("HEALTHCHECK", text, option, value)
        elif option == "--retries" and sep and value.isdigit() and int(value) > 0:
            health["Retries"] = int(value)
        else:
            raise _bad("HEALTHCHECK", text, f"unknown or bad option {option_word!r}")
    keyword, _, command = rest.partition(" ")
    command = command.strip()
    if keyword.upper() != "CMD" or not command:
        raise _bad("HEALTHCHECK", text, "expected NONE or [options] CMD command")
    if command.startswith("["):
        argv = json_argv(command, "HEALTHCHECK CMD")
        if not argv:
            raise _bad("HEALTHCHECK", text, "the command is empty")
        test = ["CMD", *argv]
    else:
        test = ["CMD-SHELL", command]
    return {"Test": test, **health}


def _onbuild(text: str) -> str:
    inner = text.split(None, 1)[0].upper()
    if inner in ("ONBUILD", "FROM", "MAINTAINER"):
        raise _bad("ONBUILD", text, f"{inner} is not allowed as an ONBUILD trigger")
    if len(text.split(None, 1)) < 2:
        raise _bad("ONBUILD", text, "the trigger has no value")
    return text


def _check(keyword: str, text: str) -> None:
    """Raise what applying *text* would: every value is checked before anything runs."""
    if keyword in ("ENV", "LABEL"):
        _pairs(text, keyword)
    elif keyword == "EXPOSE":
        if "$" in text:
            raise _bad(keyword, text, "variables are not taken here; give the port itself")
        _ports(text)
    elif keyword == "VOLUME":
        _volumes(text)
    elif keyword == "USER":
        if len(text.split()) != 1:
            raise _bad(keyword, text, "one user name or uid[:gid]")
    elif keyword == "STOPSIGNAL":
        if "$" in text:
            raise _bad(keyword, text, "variables are not taken here; give the signal itself")
        _stop_signal(text)
    elif keyword == "HEALTHCHECK":
        _healthcheck(text)
    elif keyword == "ONBUILD":
        _onbuild(text)


def _expand(value: str, env: dict[str, str]) -> str:
    """``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME:+word}`` from the environment set so
    far, as the engine's commit expands them (``\\$`` is a dollar)."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group(1) or match.group(4)
        current = env.get(name, "")
        if match.group(2) == ":-":
            return current or match.group(3)
        if match.group(2) == ":+":
            return match.group(3) if current else ""
        return current

    return _VAR.sub(sub, value)


# -- applying changes to an image config ourselves -------------------------------------------------
def apply_changes(config: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """*config* (an image's run config) with *changes* applied as the engine would."""
    run = dict(config)
    cmd_set = False
    for change in changes:
        k, text = change.keyword, change.text
        env_now = dict(e.split("=", 1) if "=" in e else (e, "") for e in run.get("Env") or [])
        if k == "ENV":
            env = [e for e in run.get("Env") or []]
            for key, value in _pairs(text, k):
                value = _expand(value, env_now)
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            run["Env"] = env
        elif k == "LABEL":
            labels = {key: _expand(value, env_now) for key, value in _pairs(text, k)}
            run["Labels"] = {**(run.get("Labels") or {}), **labels}
        elif k == "EXPOSE":
            run["ExposedPorts"] = {
                **(run.get("ExposedPorts") or {}),
                **{p: {} for p in _ports(text)},
            }
        elif k == "VOLUME":
            paths = [_expand(p, env_now) for p in _volumes(text)]
            run["Volumes"] = {**(run.get("Volumes") or {}), **{p: {} for p in paths}}
        elif k == "USER":
            run["User"] = _expand(text, env_now)
        elif k == "WORKDIR":
            base = run.get("WorkingDir") or "/"
            run["WorkingDir"] = posixpath.normpath(posixpath.join(base, _expand(text, env_now)))
        elif k == "STOPSIGNAL":
            run["StopSignal"] = _stop_signal(text)
        elif k == "HEALTHCHECK":
            run["Healthcheck"] = _healthcheck(text)
        elif k == "ONBUILD":
            run["OnBuild"] = [*(run.get("OnBuild") or []), _onbuild(text)]
        elif k == "CMD":
            run["Cmd"] = list(change.argv) if change.argv is not None else ["/bin/sh", "-c", text]
            cmd_set = True
        elif k == "ENTRYPOINT":
            argv = list(change.argv) if change.argv is not None else ["/bin/sh", "-c", text]
            run["Entrypoint"] = argv or None
            if not cmd_set:
                run["Cmd"] = None  # as a Dockerfile: a new ENTRYPOINT drops the inherited CMD
        else:  # parse_changes lets nothing else through
            raise UsageError(f"unsupported change {k} {text}")
    return run


def engine_cannot(container: dict[str, Any], changes: list[Change]) -> str | None:
    """Why the engine's commit would not give the config *changes* ask for (None: it would).

    The engine's commit refuses STOPSIGNAL, and after applying the changes it fills an empty
    Cmd (when there is no Entrypoint) and an empty Entrypoint from the container's own: an
    explicit ``CMD []`` would store the container's ad-hoc command (case C24)."""
    own = sorted({c.keyword for c in changes if c.keyword in OWN_INSTRUCTIONS})
    if own:
        return f"the engine's commit does not take {', '.join(own)}"
    if not any(c.keyword in EXEC_FORM for c in changes):
        return None
    wanted = apply_changes(container, changes)
    if wanted.get("Entrypoint"):
        return None
    if not wanted.get("Cmd") and container.get("Cmd"):
        return "the engine's commit would replace an empty Cmd with the container's"
    if container.get("Entrypoint"):
        return "the engine's commit would replace an empty Entrypoint with the container's"
    return None
