#!/usr/bin/env bash
# PostgreSQL server binaries, the local stand-in for Redshift (the tests start their own throwaway cluster).
# As root with apt (as in CI), Debian's postgresql package is installed when they are missing; otherwise one
# line says what to install.
set -euo pipefail
# apt_install, the install step every scripts/ensure-*.sh shares (scripts/apt.sh, beside this script).
case ${BASH_SOURCE[0]} in */*) source "${BASH_SOURCE[0]%/*}/apt.sh" ;; *) source ./apt.sh ;; esac
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
apt_install PostgreSQL postgresql && exit 0
echo "PostgreSQL server binaries are missing: run 'sudo apt-get install -y postgresql' and retry." >&2
exit 1
