#!/usr/bin/env bash
# Installs what local runs and tests need where it is missing: the MariaDB
# server binaries (tests and the demo start their own throwaway instances),
# Node.js and the Kinesis emulator (kinesalite, from npm).
set -euo pipefail
cd "$(dirname "$0")"

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
updated=""
apt_install() {
  if [ -z "$updated" ]; then $sudo_cmd apt-get update -qq; updated=1; fi
  $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "installing MariaDB server binaries"
  apt_install mariadb-server mariadb-client
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js"
  apt_install nodejs npm
fi
if [ ! -d node_modules/kinesalite ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
