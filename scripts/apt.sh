# Sourced (not run) by scripts/ensure-*.sh: what each does when a tool is missing.
#
# apt_install WHAT PACKAGE...: as root on a machine with apt that knows the last PACKAGE (the one that
# depends on the others: python3.11-venv, npm), installs the PACKAGEs from Debian's packages, saying so on
# stderr, and succeeds; otherwise installs nothing and fails. Nothing goes to stdout (ensure-python.sh
# prints only the interpreter there).
apt_install() {
  local what=$1 plural=s
  shift
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && apt-cache show "${!#}" >/dev/null 2>&1 || return 1
  [ $# -gt 1 ] || plural=
  echo "installing $what (Debian package$plural $*)..." >&2
  apt-get update -qq >&2 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
