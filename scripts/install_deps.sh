#!/usr/bin/env bash
# Installs the Debian packages GridGov needs, only those missing. Needs root (or sudo) the
# first time; afterwards it only checks.
set -euo pipefail
need=(postgresql-15 postgresql-15-postgis-3 redis-server python3-venv chromium chromium-driver fonts-wqy-microhei docker-compose gdal-bin nginx-light)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
