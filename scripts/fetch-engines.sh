#!/usr/bin/env bash
# Fetch newer Docker engines from Debian's archive into private prefixes, for the sandbox's
# engine matrix (sandbox/sandbox.py --engine c=docker-26). Idempotent and cached: an engine
# already unpacked is reused; nothing is installed and the system's apt never sees the suites.
#
#   scripts/fetch-engines.sh [ENGINE...]      ENGINE: docker-26 (default), docker-28, all
#
#   docker-26  trixie's docker.io 26.1 + docker-cli, containerd 1.7, tini
#   docker-28  sid's docker.io 28.5 + docker-cli, containerd 2.1, tini-static (a moving target)
#
# How: a private apt configuration (its own sources list naming the new suite of the mirror the
# system's own sources use, its own lists and cache dirs) runs `apt-get update` and `apt-get
# download`; the .debs are unpacked with `dpkg -x` into $LAYERFERRY_ENGINES_DIR/ENGINE
# (default /var/cache/layerferry-engines). runc is not fetched: the newer suites' runc needs a
# newer glibc, so the sandbox uses bookworm's /usr/sbin/runc. Only Debian's archive is contacted.
# Prints one line per engine: "ENGINE PREFIX". Needs root (writes under /var/cache).
set -euo pipefail

root=${LAYERFERRY_ENGINES_DIR:-/var/cache/layerferry-engines}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "fetch-engines: $*" >&2; }
die() { say "error: $*"; exit 1; }

suite_of() {
  case $1 in
    docker-26) echo trixie ;;
    docker-28) echo sid ;;
    *) die "unknown engine '$1' (known: docker-26, docker-28)" ;;
  esac
}

major_of() {
  case $1 in
    docker-26) echo 26 ;;
    docker-28) echo 28 ;;
  esac
}

ready() { [ -f "$root/$1/.complete" ] && [ -x "$root/$1/usr/sbin/dockerd" ]; }

# The Debian mirror the system's own sources use for its release's main component, read through
# apt itself (so one-line .list and deb822 .sources files both count); never a hard-coded host.
system_mirror() {
  local codename mirror
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
  mirror=${LAYERFERRY_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(RELEASE) $(COMPONENT) $(TARGET_OF) $(REPO_URI)' |
    awk -v s="$codename" '$1 == s && $2 == "main" && $3 == "deb" { print $4; exit }')}
  [ -n "$mirror" ] || die "no 'deb … $codename main' entry in the system's apt sources; set LAYERFERRY_DEBIAN_MIRROR"
  echo "${mirror%/}"
}

fetch() {
  local engine=$1 suite major aptdir stage tmp mirror t0 pkgs deps dep version
  suite=$(suite_of "$engine")
  major=$(major_of "$engine")
  t0=$(date +%s%N)
  mirror=$(system_mirror)
  [ -r "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"
  say "$engine: fetching $suite's docker.io from $mirror"

  aptdir=$root/apt/$suite
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/empty"
  echo "deb [signed-by=$keyring] $mirror $suite main" >"$aptdir/sources.list"
  local apt_opts=(
    -o "Dir::Etc::sourcelist=$aptdir/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::Etc::preferences=$aptdir/empty/preferences"
    -o "Dir::Etc::preferencesparts=$aptdir/empty"
    -o "Dir::State::Lists=$aptdir/lists"
    -o "Dir::Cache=$aptdir/cache"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_opts[@]}" -qq update >/dev/null || die "apt-get update of $suite failed"

  # docker.io itself, its CLI, and the dependencies whose programs dockerd runs (containerd,
  # tini or tini-static as docker-init); runc stays bookworm's, the rest is system plumbing.
  deps=$(apt-cache "${apt_opts[@]}" depends --no-recommends --no-suggests docker.io |
    awk '$1 == "Depends:" { print $2 }')
  pkgs=(docker.io docker-cli)
  for dep in $deps; do
    case $dep in containerd | tini | tini-static) pkgs+=("$dep") ;; esac
  done
  printf '%s\n' "${pkgs[@]}" | grep -qx containerd || die "docker.io in $suite no longer depends on containerd: $deps"

  stage=$root/.stage-$engine
  tmp=$root/.unpack-$engine
  rm -rf "$stage" "$tmp"
  mkdir -p "$stage" "$tmp"
  (cd "$stage" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" >/dev/null) ||
    die "apt-get download ${pkgs[*]} from $suite failed"
  for deb in "$stage"/*.deb; do
    dpkg -x "$deb" "$tmp"
  done

  version=$("$tmp/usr/sbin/dockerd" --version) || die "$engine: unpacked dockerd does not run"
  case $version in
    "Docker version $major."*) ;;
    *) die "$engine: expected Docker $major.x from $suite, got: $version" ;;
  esac
  {
    echo "engine=$engine"
    echo "suite=$suite"
    echo "mirror=$mirror"
    echo "dockerd=$version"
    for deb in "$stage"/*.deb; do
      echo "package=$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)"
    done
    echo "fetched=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$tmp/ENGINE"
  touch "$tmp/.complete"
  rm -rf "${root:?}/$engine"
  mv "$tmp" "$root/$engine"
  local size
  size=$(du -sh "$root/$engine" | cut -f1)
  rm -rf "$stage"
  say "$engine: $version; $size in $root/$engine; $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

main() {
  local engines=("$@") engine
  [ ${#engines[@]} -gt 0 ] || engines=(docker-26)
  [ "${engines[*]}" != all ] || engines=(docker-26 docker-28)
  for engine in "${engines[@]}"; do suite_of "$engine" >/dev/null; done
  if ! mkdir -p "$root" 2>/dev/null || [ ! -w "$root" ]; then
    die "cannot write $root (run as root, or set LAYERFERRY_ENGINES_DIR)"
  fi
  exec 9>"$root/.lock"
  flock 9 # concurrent runs (other sandboxes, CI) wait instead of unpacking twice
  for engine in "${engines[@]}"; do
    ready "$engine" || fetch "$engine"
    echo "$engine $root/$engine"
  done
}

main "$@"
