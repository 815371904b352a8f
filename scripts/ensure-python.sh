#!/usr/bin/env bash
# Prints the path of a Python 3.11 interpreter that can create virtualenvs (Glue 5.0 and the Batch image run
# 3.11): $PYTHON when set, else python3.11, else python3 when it is 3.11. As root with apt, a missing
# interpreter (or its venv module) is installed from Debian's packages; otherwise one line says what to install.
set -euo pipefail
# apt_install, the install step every scripts/ensure-*.sh shares (scripts/apt.sh, beside this script).
case ${BASH_SOURCE[0]} in */*) source "${BASH_SOURCE[0]%/*}/apt.sh" ;; *) source ./apt.sh ;; esac

# Prints major.minor and fails when the venv module cannot bootstrap pip (Debian splits it into python3.X-venv).
probe() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2]); import ensurepip, venv' 2>/dev/null
}

# The first candidate that is 3.11; "venv" when it is 3.11 without a working venv module.
find_python() {
  local candidate version
  if [ -n "${PYTHON:-}" ]; then
    set -- "$PYTHON"
  else
    set -- python3.11 python3
  fi
  for candidate in "$@"; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if version=$(probe "$candidate"); then
      if [ "$version" = "3.11" ]; then
        command -v "$candidate"
        return 0
      fi
    elif [ "${version%%$'\n'*}" = "3.11" ]; then
      echo venv
      return 0
    fi
  done
  return 1
}

found=$(find_python || true)
if [ -n "$found" ] && [ "$found" != venv ]; then
  echo "$found"
  exit 0
fi
if [ -n "${PYTHON:-}" ]; then
  echo "PYTHON=$PYTHON is not a Python 3.11 with the venv module: point PYTHON at one (or unset it) and retry." >&2
  exit 1
fi
if apt_install "Python 3.11" python3.11 python3.11-venv; then
  found=$(find_python || true)
  if [ -n "$found" ] && [ "$found" != venv ]; then
    echo "$found"
    exit 0
  fi
fi
if [ "$found" = venv ]; then
  echo "Python 3.11 has no venv module: run 'sudo apt-get install -y python3.11-venv' and retry." >&2
else
  echo "Python 3.11 is missing: install it (Debian/Ubuntu: 'sudo apt-get install -y python3.11 python3.11-venv') so that python3.11 is on PATH, or set PYTHON to one, and retry." >&2
fi
exit 1
