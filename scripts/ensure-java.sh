#!/usr/bin/env bash
# A Java runtime for pyspark (Spark 3.5 runs on Java 8, 11 or 17): $JAVA_HOME/bin/java when JAVA_HOME is set,
# else java on PATH. As root with apt, Debian's openjdk-17-jre-headless is installed when none of those
# versions is there; otherwise one line says what to install.
set -euo pipefail
# apt_install, the install step every scripts/ensure-*.sh shares (scripts/apt.sh, beside this script).
case ${BASH_SOURCE[0]} in */*) source "${BASH_SOURCE[0]%/*}/apt.sh" ;; *) source ./apt.sh ;; esac

# Prints the Java feature version (8 for "1.8.0_412", 17 for "17.0.15") of the java pyspark would start.
java_version() {
  local java=java line version
  [ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
  command -v "$java" >/dev/null 2>&1 || return 1
  line=$("$java" -version 2>&1 | head -n 1) || return 1
  version=${line#*version \"}
  version=${version%%\"*}
  case "$version" in
    1.*) version=${version#1.} ;;
  esac
  echo "${version%%[.+_-]*}"
}

supported() {
  case "$(java_version || true)" in
    8 | 11 | 17) return 0 ;;
  esac
  return 1
}

supported && exit 0
found=$(java_version || true)
if [ -z "${JAVA_HOME:-}" ] && [ -z "$found" ] && apt_install "Java 17 for pyspark" openjdk-17-jre-headless; then
  supported && exit 0
fi
if [ -n "$found" ]; then
  echo "Java $found is not one pyspark 3.5 runs on (8, 11 or 17): install Java 17 ('sudo apt-get install -y openjdk-17-jre-headless') and set JAVA_HOME to it, then retry." >&2
else
  echo "Java is missing (pyspark needs it): run 'sudo apt-get install -y openjdk-17-jre-headless' (or install any Java 17 and set JAVA_HOME) and retry." >&2
fi
exit 1
