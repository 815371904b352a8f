#!/usr/bin/env bash
# node and npm, which install and run asl-validator (package.json), the tests' Step Functions definition
# check. As root with apt, Debian's nodejs and npm packages are installed when either is missing;
# otherwise one line says what to install.
set -euo pipefail
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && apt-cache show npm >/dev/null 2>&1; then
  echo "installing Node.js (Debian packages nodejs npm)..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  exit 0
fi
echo "node and npm are missing (asl-validator needs them): run 'sudo apt-get install -y nodejs npm' (or install Node.js 18 or newer) and retry." >&2
exit 1
