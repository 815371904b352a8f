#!/usr/bin/env bash
# PostgreSQL server binaries are the local stand-in for Redshift. Install Debian's package if they
# are missing (as root, as in CI); otherwise say how. The tests start their own throwaway cluster.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries are missing: run 'sudo apt-get install -y postgresql' and retry." >&2
  exit 1
fi
echo "installing PostgreSQL (Debian package postgresql)..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
