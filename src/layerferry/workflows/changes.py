"""Dockerfile-style changes (``-c``), checked before anything runs and kept structured.

CMD and ENTRYPOINT are built in exec (JSON) form: from ``--cmd-json``/``--entrypoint-json``,
from a JSON list in ``-c``, or converted from shell form when that is unambiguous (plain words,
no quotes, variables or shell operators). Other shell form is refused unless asked for
(``shell_form=True``): the engine would wrap it in ``/bin/sh -c`` and the process would no
longer be PID 1 (case C25). The same changes are given to the engine's commit as text, or
applied to an image config by layerferry itself (commits that build their own layer).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..reporting import Reporter

INSTRUCTIONS = {
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
    "HEALTHCHECK",
}
EXEC_FORM = {"CMD", "ENTRYPOINT"}
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9_./:=@%+,-]+(?: +[A-Za-z0-9_./:=@%+,-]+)*")


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
    """Refuse unknown or empty instructions before anything runs; exec form for CMD/ENTRYPOINT."""
    out: list[Change] = []
    for raw in changes:
        keyword, _, rest = raw.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in INSTRUCTIONS:
            raise UsageError(
                f"unsupported change {raw!r}", hint="one of " + ", ".join(sorted(INSTRUCTIONS))
            )
        if not rest:
            raise UsageError(f"change {raw!r} has no value")
        if keyword in EXEC_FORM:
            out.append(_exec_change(keyword, rest, shell_form, reporter))
        else:
            out.append(Change(keyword, rest))
    for keyword, text in (("ENTRYPOINT", entrypoint_json), ("CMD", cmd_json)):
        if text is None:
            continue
        if any(c.keyword == keyword for c in out):
            raise UsageError(f"{keyword} given twice (-c and --{keyword.lower()}-json)")
        argv = json_argv(text, f"--{keyword.lower()}-json")
        out.append(Change(keyword, json.dumps(list(argv)), argv))
    return out


# -- applying changes to an image config ourselves -------------------------------------------------
def _pairs(text: str, keyword: str) -> list[tuple[str, str]]:
    words = shlex.split(text)
    if words and "=" not in words[0]:
        key, _, value = text.partition(" ")  # legacy ``ENV KEY value with spaces``
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"{keyword} {text!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """*config* (an image's run config) with *changes* applied as the engine would."""
    run = dict(config)
    cmd_set = False
    for change in changes:
        k, text = change.keyword, change.text
        if k == "ENV":
            env = [e for e in run.get("Env") or []]
            for key, value in _pairs(text, k):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            run["Env"] = env
        elif k == "LABEL":
            run["Labels"] = {**(run.get("Labels") or {}), **dict(_pairs(text, k))}
        elif k == "EXPOSE":
            ports = dict(run.get("ExposedPorts") or {})
            ports.update({(p if "/" in p else f"{p}/tcp"): {} for p in text.split()})
            run["ExposedPorts"] = ports
        elif k == "VOLUME":
            paths = list(json_argv(text, k)) if text.startswith("[") else text.split()
            run["Volumes"] = {**(run.get("Volumes") or {}), **{p: {} for p in paths}}
        elif k == "USER":
            run["User"] = text
        elif k == "WORKDIR":
            base = run.get("WorkingDir") or "/"
            run["WorkingDir"] = text if text.startswith("/") else f"{base.rstrip('/')}/{text}"
        elif k == "STOPSIGNAL":
            run["StopSignal"] = text
        elif k == "ONBUILD":
            run["OnBuild"] = [*(run.get("OnBuild") or []), text]
        elif k == "CMD":
            run["Cmd"] = list(change.argv) if change.argv is not None else ["/bin/sh", "-c", text]
            cmd_set = True
        elif k == "ENTRYPOINT":
            argv = list(change.argv) if change.argv is not None else ["/bin/sh", "-c", text]
            run["Entrypoint"] = argv or None
            if not cmd_set:
                run["Cmd"] = None  # as a Dockerfile: a new ENTRYPOINT drops the inherited CMD
        else:
            raise UsageError(
                f"{k} cannot be applied by a commit that builds its own layer (--exclude, "
                "--squash)",
                hint="set it in a later plain commit, or leave out --exclude",
            )
    return run
