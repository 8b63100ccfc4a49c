#!/usr/bin/env bash
# Installs the system packages layerferry's demo and tests use, only those missing (Debian/Ubuntu, root),
# then fetches the newer Docker engine of the sandbox's engine matrix (Debian only; cached).
set -euo pipefail

packages=(docker.io openssh-server openssh-client busybox-static iproute2 zstd iptables debian-archive-keyring
          skopeo podman umoci oci-image-tool docker-registry apache2-utils openssl)
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Docker 26 with the containerd image store for tests/integration/test_engines.py: unpacked, not
# installed, under /var/cache/layerferry-engines (LAYERFERRY_ENGINES_DIR); instant once cached,
# ~15 s and ~240 MB the first time.
bash "$(dirname "$0")/fetch-engines.sh" docker-26 >/dev/null
