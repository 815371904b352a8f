"""scripts/ensure-{python,java,node}.sh, what `make setup` checks before installing anything: run with a
PATH holding only fakes (interpreters, java, id, apt-get, apt-cache), so every branch is exercised on
any machine: found, installed from Debian's packages as root (scripts/apt.sh, which ensure-postgres.sh
shares), or one line naming what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.harness import ROOT

BASH = shutil.which("bash") or "/bin/bash"
HEAD = shutil.which("head") or "/usr/bin/head"
CHMOD = shutil.which("chmod") or "/bin/chmod"


def fake(bin_dir: Path, name: str, body: str) -> Path:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def python(version: str, venv: bool = True) -> str:
    """Answers the probe: prints major.minor, fails when `import ensurepip, venv` would."""
    return f"echo {version}\nexit {0 if venv else 1}"


def java(version_line: str) -> str:
    return f"echo '{version_line}' >&2"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "head").symlink_to(HEAD)
    fake(directory, "id", 'echo "${FAKE_UID:-1000}"')
    return directory


def with_apt(bin_dir: Path, installs: dict[str, tuple[str, str]]) -> Path:
    """apt-cache knows the given packages; apt-get install writes the executables they provide."""
    log = bin_dir.parent / "apt.log"
    known = " ".join(installs)
    fake(bin_dir, "apt-cache", f'case " {known} " in *" $2 "*) exit 0 ;; esac\nexit 100')
    writes = "".join(
        f"  {package}) printf '#!/bin/sh\\n%s\\n' \"{body}\" > {bin_dir}/{exe}; {CHMOD} +x {bin_dir}/{exe} ;;\n"
        for package, (exe, body) in installs.items()
    )
    fake(
        bin_dir,
        "apt-get",
        f'echo "$@" >> {log}\n[ "$1" = install ] || exit 0\nfor p in "$@"; do case "$p" in\n{writes}esac; done',
    )
    return log


def run(script: str, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(ROOT / "scripts" / script)],
        env={"PATH": str(bin_dir), **env},
        capture_output=True,
        text=True,
    )


# --- Python 3.11 ---------------------------------------------------------------------------------

PYTHON_MISSING = (
    "Python 3.11 is missing: install it (Debian/Ubuntu: 'sudo apt-get install -y python3.11 python3.11-venv') "
    "so that python3.11 is on PATH, or set PYTHON to one, and retry.\n"
)


def test_python311_is_preferred(bin_dir: Path) -> None:
    fake(bin_dir, "python3", python("3.12"))
    interpreter = fake(bin_dir, "python3.11", python("3.11"))
    result = run("ensure-python.sh", bin_dir)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{interpreter}\n", "")


def test_python3_is_taken_when_it_is_311(bin_dir: Path) -> None:
    interpreter = fake(bin_dir, "python3", python("3.11"))
    result = run("ensure-python.sh", bin_dir)
    assert (result.returncode, result.stdout) == (0, f"{interpreter}\n")


def test_another_python3_stops_with_what_to_install(bin_dir: Path) -> None:
    fake(bin_dir, "python3", python("3.12"))
    result = run("ensure-python.sh", bin_dir)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", PYTHON_MISSING)


def test_no_python_at_all_stops_with_what_to_install(bin_dir: Path) -> None:
    result = run("ensure-python.sh", bin_dir)
    assert (result.returncode, result.stderr) == (1, PYTHON_MISSING)


def test_311_without_venv_names_the_venv_package(bin_dir: Path) -> None:
    fake(bin_dir, "python3.11", python("3.11", venv=False))
    result = run("ensure-python.sh", bin_dir)
    assert (result.returncode, result.stderr) == (
        1,
        "Python 3.11 has no venv module: run 'sudo apt-get install -y python3.11-venv' and retry.\n",
    )


def test_as_root_debian_python311_is_installed(bin_dir: Path) -> None:
    fake(bin_dir, "python3", python("3.12"))
    log = with_apt(bin_dir, {"python3.11-venv": ("python3.11", "echo 3.11")})
    result = run("ensure-python.sh", bin_dir, FAKE_UID="0")
    assert (result.returncode, result.stdout) == (0, f"{bin_dir / 'python3.11'}\n")
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends python3.11 python3.11-venv",
    ]


def test_as_root_a_missing_venv_module_is_installed(bin_dir: Path) -> None:
    fake(bin_dir, "python3.11", python("3.11", venv=False))
    log = with_apt(bin_dir, {"python3.11-venv": ("python3.11", "echo 3.11")})
    result = run("ensure-python.sh", bin_dir, FAKE_UID="0")
    assert (result.returncode, result.stdout) == (0, f"{bin_dir / 'python3.11'}\n")
    assert log.read_text().splitlines()[-1] == "install -y -qq --no-install-recommends python3.11 python3.11-venv"


def test_not_root_installs_nothing(bin_dir: Path) -> None:
    log = with_apt(bin_dir, {"python3.11-venv": ("python3.11", "echo 3.11")})
    result = run("ensure-python.sh", bin_dir, FAKE_UID="1000")
    assert (result.returncode, result.stderr) == (1, PYTHON_MISSING)
    assert not log.exists()


def test_an_explicit_python_must_be_311(bin_dir: Path) -> None:
    fake(bin_dir, "python3.11", python("3.11"))
    other = fake(bin_dir, "python3.12", python("3.12"))
    result = run("ensure-python.sh", bin_dir, PYTHON=str(other))
    assert (result.returncode, result.stderr) == (
        1,
        f"PYTHON={other} is not a Python 3.11 with the venv module: point PYTHON at one (or unset it) and retry.\n",
    )
    chosen = run("ensure-python.sh", bin_dir, PYTHON=str(bin_dir / "python3.11"))
    assert (chosen.returncode, chosen.stdout) == (0, f"{bin_dir / 'python3.11'}\n")


# --- Java for pyspark ----------------------------------------------------------------------------

JAVA_MISSING = (
    "Java is missing (pyspark needs it): run 'sudo apt-get install -y openjdk-17-jre-headless' "
    "(or install any Java 17 and set JAVA_HOME) and retry.\n"
)


@pytest.mark.parametrize(
    "line",
    ['openjdk version "17.0.15" 2025-04-15', 'openjdk version "11.0.25" 2024-10-15', 'java version "1.8.0_412"'],
)
def test_a_java_spark_runs_on_is_accepted(bin_dir: Path, line: str) -> None:
    fake(bin_dir, "java", java(line))
    result = run("ensure-java.sh", bin_dir)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_java_home_wins_over_path(bin_dir: Path, tmp_path: Path) -> None:
    fake(bin_dir, "java", java('openjdk version "21.0.5" 2024-10-15'))
    home = tmp_path / "jdk17"
    (home / "bin").mkdir(parents=True)
    fake(home / "bin", "java", java('openjdk version "17.0.15" 2025-04-15'))
    assert run("ensure-java.sh", bin_dir, JAVA_HOME=str(home)).returncode == 0
    assert run("ensure-java.sh", bin_dir).returncode == 1


def test_an_unsupported_java_names_java17(bin_dir: Path) -> None:
    fake(bin_dir, "java", java('openjdk version "21.0.5" 2024-10-15'))
    result = run("ensure-java.sh", bin_dir)
    assert (result.returncode, result.stderr) == (
        1,
        "Java 21 is not one pyspark 3.5 runs on (8, 11 or 17): install Java 17 "
        "('sudo apt-get install -y openjdk-17-jre-headless') and set JAVA_HOME to it, then retry.\n",
    )


def test_no_java_stops_with_what_to_install(bin_dir: Path) -> None:
    result = run("ensure-java.sh", bin_dir)
    assert (result.returncode, result.stderr) == (1, JAVA_MISSING)


def test_as_root_debian_java17_is_installed(bin_dir: Path) -> None:
    log = with_apt(bin_dir, {"openjdk-17-jre-headless": ("java", "echo 'openjdk version \\\"17.0.15\\\"' >&2")})
    result = run("ensure-java.sh", bin_dir, FAKE_UID="0")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == (
        "",
        "installing Java 17 for pyspark (Debian package openjdk-17-jre-headless)...\n",
    )
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends openjdk-17-jre-headless",
    ]


# --- node and npm for asl-validator --------------------------------------------------------------

NODE_MISSING = (
    "node and npm are missing (asl-validator needs them): run 'sudo apt-get install -y nodejs npm' "
    "(or install Node.js 18 or newer) and retry.\n"
)


def test_node_and_npm_present(bin_dir: Path) -> None:
    fake(bin_dir, "node", "exit 0")
    fake(bin_dir, "npm", "exit 0")
    assert run("ensure-node.sh", bin_dir).returncode == 0


def test_node_without_npm_stops_with_what_to_install(bin_dir: Path) -> None:
    fake(bin_dir, "node", "exit 0")
    result = run("ensure-node.sh", bin_dir)
    assert (result.returncode, result.stderr) == (1, NODE_MISSING)


def test_as_root_debian_node_is_installed(bin_dir: Path) -> None:
    log = with_apt(bin_dir, {"npm": ("npm", "exit 0"), "nodejs": ("node", "exit 0")})
    result = run("ensure-node.sh", bin_dir, FAKE_UID="0")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "installing Node.js (Debian packages nodejs npm)...\n")
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq --no-install-recommends nodejs npm"]
    assert os.access(bin_dir / "node", os.X_OK)
