#!/usr/bin/env bash
# Installs every Debian package that building, testing and running Conveyor
# needs; installs only what is missing, so a second run is quick and quiet.
set -euo pipefail

packages=(
    build-essential pkg-config g++ clang
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
    libsqlite3-dev sqlite3 libcurl4-openssl-dev libmicrohttpd-dev
    libjansson-dev libcyaml-dev libcmocka-dev
    libphonenumber-dev libgmime-3.0-dev
    python3 curl docker-compose yamllint
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing+=("$pkg") ;;
    esac
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}; run 'make deps' as root" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
