#!/usr/bin/env bash
# Installs what local runs and tests need where it is missing: the MariaDB
# and PostgreSQL server binaries (tests and the demo start their own
# throwaway instances; nothing uses a server the package may start itself),
# openssl (TLS tests), a C++ compiler (the fuzz targets' libFuzzer),
# python3 with venv (moto's server, installed by the tests), Node.js and
# the Kinesis emulator (kinesalite, from npm).
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
# PostgreSQL targets: tests run initdb and pg_ctl from
# /usr/lib/postgresql/<version>/bin (as the postgres user when root).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL server binaries"
  apt_install postgresql postgresql-client
fi
# The fuzz targets' libFuzzer is C++ (CI checks that they compile).
if ! command -v c++ >/dev/null 2>&1; then
  echo "installing a C++ compiler"
  apt_install g++
fi
# TLS tests make their certificates with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
  echo "installing openssl"
  apt_install openssl
fi
# moto's server (Secrets Manager, SQS) is installed by the tests into a
# virtualenv under target/: they need python3 with venv and pip.
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "installing python3-venv"
  apt_install python3 python3-venv python3-pip
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js"
  apt_install nodejs npm
fi
if [ ! -d node_modules/kinesalite ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# OpenSearch targets: tests start a single node from the launcher in
# opensearch/ (Java 17 and Maven; a 512 MiB heap), built once here.
if ! command -v java >/dev/null 2>&1; then
  echo "installing a Java 17 runtime"
  apt_install openjdk-17-jdk-headless
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "installing Maven"
  apt_install maven
fi
if [ ! -f opensearch/target/classes/dev/dmscdc/opensearch/LocalNode.class ] || [ ! -d opensearch/target/lib ]; then
  echo "building the local OpenSearch launcher"
  mvn -q -f opensearch/pom.xml package -DskipTests
fi
