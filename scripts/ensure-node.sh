#!/usr/bin/env bash
# node and npm, which install and run asl-validator (package.json), the tests' Step Functions definition
# check. As root with apt, Debian's nodejs and npm packages are installed when either is missing;
# otherwise one line says what to install.
set -euo pipefail
# apt_install, the install step every scripts/ensure-*.sh shares (scripts/apt.sh, beside this script).
case ${BASH_SOURCE[0]} in */*) source "${BASH_SOURCE[0]%/*}/apt.sh" ;; *) source ./apt.sh ;; esac
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  exit 0
fi
apt_install Node.js nodejs npm && exit 0
echo "node and npm are missing (asl-validator needs them): run 'sudo apt-get install -y nodejs npm' (or install Node.js 18 or newer) and retry." >&2
exit 1
