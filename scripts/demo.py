#!/usr/bin/env python3
"""The main job, end to end: a container hot-fixed by hand on host A is migrated to host B.

Starts a two-host sandbox on this machine (network namespaces, each with its own sshd and
dockerd), runs a web server on A, changes its page with ``docker exec``, runs
``layerferry migrate`` and fetches the page from B. Tears everything down at the end.
Exit status 0 only when B serves the hot-fixed page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sandbox.sandbox import Sandbox  # noqa: E402

PORT = 8080


def say(text: str) -> None:
    print(f"\n\033[1m{text}\033[0m" if sys.stdout.isatty() else f"\n{text}", flush=True)


def fetch(url: str) -> str:
    for _ in range(40):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode().strip())
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"demo: no answer from {url}")


def layerferry(sb: Sandbox, *args: str) -> None:
    env = dict(os.environ)
    env.update(
        DOCKER_HOST=sb.host("a").docker_host,  # layerferry runs "on host A"
        LAYERFERRY_SSH_CONFIG=str(sb.ssh_config),  # keys and known_hosts of the sandbox
        LAYERFERRY_CACHE_DIR=str(Path(sb.dir) / "layerferry-cache"),
    )
    print(f"$ layerferry {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "layerferry", *args], env=env)
    if done.returncode != 0:
        raise SystemExit(f"demo: layerferry {args[0]} failed (exit {done.returncode})")


def story(sb: Sandbox) -> None:
    a, b = sb.host("a"), sb.host("b")
    say(f"Two hosts are up: A at {a.ip} and B at {b.ip}, each with its own dockerd and sshd.")
    sb.import_busybox("a", "web:1")
    sb.docker(
        "a",
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        f"{PORT}:80",
        "--restart",
        "unless-stopped",
        "-e",
        "SITE=demo",
        "--label",
        "owner=ops",
        "web:1",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    )
    print(f"Host A runs container 'web' (busybox httpd, port {PORT}). It serves:")
    print("   ", fetch(f"http://{a.ip}:{PORT}/"))

    say("An operator hot-fixes the page by hand, inside the running container:")
    fix = "<h1>Hot-fixed on host A at " + time.strftime("%H:%M:%S") + "</h1>"
    print(f"$ docker exec web sh -c 'echo \"{fix}\" > /www/index.html'")
    sb.docker("a", "exec", "web", "sh", "-c", f"echo '{fix}' > /www/index.html")
    print("Host A now serves:")
    print("   ", fetch(f"http://{a.ip}:{PORT}/"))

    say("layerferry migrates the container, change and run configuration, to host B over SSH:")
    layerferry(sb, "migrate", "web", b.ssh_url, "--start")

    say(f"Host B ({b.ip}) serves:")
    page_b = fetch(f"http://{b.ip}:{PORT}/")
    print("   ", page_b)
    if page_b != fix:
        raise SystemExit(f"demo: host B serves {page_b!r}, expected {fix!r}")
    running = sb.docker("a", "inspect", "--format", "{{.State.Running}}", "web", text=True)
    print(f"The source container on A is untouched (running: {str(running.stdout).strip()}).")

    say("A second hot-fix on A; migrating again moves only the new layer (B has the rest):")
    fix2 = fix.replace("Hot-fixed", "Hot-fixed twice")
    sb.docker("a", "exec", "web", "sh", "-c", f"echo '{fix2}' > /www/index.html")
    layerferry(sb, "migrate", "web", b.ssh_url, "--start", "--replace")
    page_b = fetch(f"http://{b.ip}:{PORT}/")
    print(f"Host B serves:\n    {page_b}")
    if page_b != fix2:
        raise SystemExit(f"demo: host B serves {page_b!r}, expected {fix2!r}")
    say("Done: the hand-made change lives on host B. Tearing the sandbox down.")


def main() -> int:
    if os.geteuid() != 0:
        print("demo: run as root (it starts network namespaces, dockerd and sshd)", file=sys.stderr)
        return 1
    say("Starting a two-host sandbox on this machine…")
    sb = Sandbox.up()
    try:
        story(sb)
    finally:
        sb.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
