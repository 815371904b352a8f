"""Compile every lock file from its inputs: `make lock` (keeps the pinned versions the inputs still allow)
or `make lock-upgrade` (the newest versions the inputs allow).

Each `<name>.in` lists the top-level requirements with their ranges; `uv pip compile --generate-hashes`
writes `<name>.txt` beside it, every package pinned to one version with the sha256 of each of its files
(every platform's), so pip installs it in hash-checking mode.

Why uv's pip-compatible compiler: it resolves for a named platform and Python (PLATFORM, 3.11) on any
machine, where pip-tools resolves for the interpreter that runs it; it is one binary from PyPI, pinned in
requirements-dev.txt; and its output is pip's requirements format, so every installer stays plain pip
(Pulumi's `toolchain: pip`, the Dockerfile, CI) and needs no uv. A uv.lock project was not used: the
installs are separate environments (the program, the image, the policy pack, the smoke run on top of the
program), each needs its own file anyway, and Pulumi's uv toolchain runs `uv sync` without --locked.
Dependabot's uv ecosystem recompiles such .in/.txt pairs. Each lock is compiled in its own directory,
so the command in its header is the one to rerun there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.11"  # Glue 5.0, the Batch image and the project's requires-python
# linux/amd64 with glibc 2.28 or newer: the CI runners (Ubuntu 24.04), the Batch image (Debian bookworm) and
# the dev containers. Not universal: a universal resolution forks for every Python above 3.11 (uv takes
# only a lower bound), where the policy pack's SDK and the program's do not agree on protobuf.
PLATFORM = "x86_64-manylinux_2_28"
DEV = "requirements-dev.txt"


@dataclass(frozen=True)
class Lock:
    directory: str  # relative to the repository root; the compile runs there
    source: str  # the .in file, in that directory
    constrained: bool  # held at the dev lock's versions (compiled after it)

    @property
    def output(self) -> str:
        return self.source.removesuffix(".in") + ".txt"

    @property
    def path(self) -> Path:
        return ROOT / self.directory / self.output

    @property
    def source_path(self) -> Path:
        return ROOT / self.directory / self.source

    def args(self, *options: str) -> list[str]:
        """The compile command after `uv`: as it appears in the lock's header, or with `options` (that the
        header leaves out) after `pip compile`."""
        depth = len(Path(self.directory).parts)  # "." has none
        constraint = ["--constraint", "/".join([".."] * depth + [DEV])] if self.constrained else []
        return [
            "pip",
            "compile",
            *options,
            "--generate-hashes",
            "--python-version",
            PYTHON_VERSION,
            "--python-platform",
            PLATFORM,
            *constraint,
            self.source,
            "-o",
            self.output,
        ]


# The dev lock first: one resolution of everything (it installs all of it in one virtualenv); every other
# lock is held at its versions, so what is deployed is what the tests ran, and the program's and the smoke
# run's locks agree where they share a virtualenv.
LOCKS = (
    Lock(".", "requirements-dev.in", constrained=False),  # the tests and dev tools (`make setup`)
    Lock(".", "requirements.in", constrained=True),  # the Pulumi program (Pulumi.yaml's virtualenv)
    Lock("batch_image", "requirements.in", constrained=True),  # the Batch image
    Lock("policy", "requirements.in", constrained=True),  # the policy pack (PulumiPolicy.yaml's virtualenv)
    Lock("smoke", "requirements.in", constrained=True),  # the smoke run, on top of the program's lock
)


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        sys.exit("uv is missing: run `make setup` (requirements-dev.txt installs it) and retry.")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="the newest versions the inputs allow")
    args = parser.parse_args(argv)
    # Never download an interpreter: resolving for 3.11 needs none, and uv's downloads come from GitHub.
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    options = ["--quiet", "--upgrade"] if args.upgrade else ["--quiet"]
    binary = uv()
    for lock in LOCKS:
        command = [binary, *lock.args(*options)]
        print(f"{lock.directory}/{lock.output}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, cwd=ROOT / lock.directory, env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
