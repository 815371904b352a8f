"""Check that README.md and docs/ refer only to things that exist (make docs-check, run by make test).

In shell code blocks (```bash, sh, shell, console) and in inline code spans that start with `make `,
`python` or `pulumi config`, it checks each command's references:

- a make target (`make run`) is a target of the Makefile;
- a module run with `python -m x.y` is a module or package of the repository (or installed in the
  environment running the check, for tools such as pytest);
- a path whose first component is a top-level file or folder of the repository
  (`scripts/pr_stack_config.py`, `sample_data/sales/`), or a top-level-looking file name with a
  source extension (`Pulumi.dev.yaml`), is a file or folder of the repository;
- a config key (`dataplatform:key`, or the key of `pulumi config set|get|rm key` without a namespace)
  is a declared setting.

In prose, an inline code span that is a camelCase word beginning like a declared key
(`renderLogsTable`) must be a declared setting.

Everywhere outside code it checks that relative Markdown links resolve to a repository file and that
their `#anchor` is a heading (GitHub's slug) or an explicit `<a id=...>` of the target page. It also
checks that docs/configuration.md is what scripts/config_reference.py writes. Repository files are
those git tracks plus the untracked ones it does not ignore.

    python scripts/docs_check.py            # every problem, one line each as file:line: message; exit 1 if any
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
# A file name without a folder is taken as a repository file when it ends so (a user's own
# `render_logs.csv` is not).
SOURCE_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".json")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_CONFIG_KEY = re.compile(r"\b([a-z][a-z0-9-]*):([A-Za-z][A-Za-z0-9]*)")
_MAKE_TARGET = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*(?:\s+[A-Za-z0-9_][A-Za-z0-9_.-]*)*)\s*:(?!=)")
# A camelCase word (at least two words) and its first word, as setting keys are written.
_CAMEL_CASE = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
_CAMEL_FIRST_WORD = re.compile(r"[a-z][a-z0-9]*")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


@dataclass(frozen=True)
class Repo:
    """What the documents may refer to."""

    root: Path
    project: str
    files: frozenset[str]  # repository-relative POSIX paths
    folders: frozenset[str]
    make_targets: frozenset[str]
    settings: frozenset[str]

    @classmethod
    def load(cls, root: Path = ROOT) -> Repo:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        files = frozenset(f for f in listed.split("\0") if f and (root / f).exists())
        folders = frozenset(str(parent) for f in files for parent in PurePosixPath(f).parents if str(parent) != ".")
        from pipelines.registry import settings

        project = re.search(r"^name:\s*(\S+)", (root / "Pulumi.yaml").read_text(), re.MULTILINE)
        return cls(
            root=root,
            project=project.group(1) if project else "dataplatform",
            files=files,
            folders=folders,
            make_targets=make_targets((root / "Makefile").read_text()),
            settings=frozenset(s.key for s in settings()),
        )

    @property
    def top_level(self) -> frozenset[str]:
        return frozenset(PurePosixPath(p).parts[0] for p in self.files)

    def exists(self, path: str) -> bool:
        clean = str(PurePosixPath(path.rstrip("/"))) if path.rstrip("/") else "."
        return clean in self.files or clean in self.folders

    def module_exists(self, module: str) -> bool:
        base = module.replace(".", "/")
        if f"{base}.py" in self.files or f"{base}/__init__.py" in self.files or f"{base}/__main__.py" in self.files:
            return True
        if module.split(".")[0] in self.top_level:
            return False  # a repository package: its modules must be in the repository
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False


def make_targets(makefile: str) -> frozenset[str]:
    """Targets of explicit rules (`name:` at the start of a line; not variables, not patterns)."""
    targets: set[str] = set()
    for line in makefile.splitlines():
        match = _MAKE_TARGET.match(line)
        if match and not line.startswith("\t"):
            targets.update(t for t in match.group(1).split() if not t.startswith("."))
    return frozenset(targets)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup removed, lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (repeats numbered -1, -2, ...) and <a id>s."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for _, line, in_code, _ in _lines(text):
        if in_code:
            continue
        found.update(_HTML_ANCHOR.findall(line))
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            n = counts.get(base, 0)
            counts[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def _lines(text: str) -> list[tuple[int, str, bool, str]]:
    """(line number, line, inside a fenced block, the block's language) for every line but fences."""
    out: list[tuple[int, str, bool, str]] = []
    fence: str | None = None
    language = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence, language = match.group(2), match.group(3).lower()
            continue
        if fence is not None and line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            fence = None
            continue
        out.append((number, line, fence is not None, language))
    return out


def _commands(text: str) -> list[tuple[int, str]]:
    """(first line number, command) of every shell command in code blocks (continuations joined,
    comments dropped) and every inline code span that is a make, python or pulumi config command."""
    commands: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line, in_code, language in _lines(text):
        if in_code:
            if language not in SHELL_LANGUAGES:
                continue
            body = re.sub(r"^\s*\$\s+", "", line)  # a console prompt
            body = re.sub(r"(^|\s)#.*$", "", body).rstrip()
            start, so_far = pending if pending else (number, "")
            if body.endswith("\\"):
                pending = (start, so_far + body[:-1] + " ")
                continue
            pending = None
            if (so_far + body).strip():
                commands.append((start, so_far + body))
            continue
        pending = None
        for match in _INLINE_CODE.finditer(line):
            span = match.group(2).strip()
            if re.match(r"(make|python3?|\.venv/bin/python|pulumi config)\s", span):
                commands.append((number, span))
    return commands


def _tokens(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=False)
    except ValueError:
        return command.split()


def _looks_like_repo_path(token: str, repo: Repo) -> bool:
    if not token or "://" in token or any(c in token for c in "$<>*{}`") or token.startswith(("/", "~", "-")):
        return False
    parts = PurePosixPath(token).parts
    if not parts or parts[0] in (".", ".."):
        return False
    if len(parts) > 1 or token.endswith("/"):
        return parts[0] in repo.top_level
    return token.endswith(SOURCE_SUFFIXES) and token[0].isalpha() and "@" not in token


def check_command(command: str, repo: Repo) -> list[str]:
    """Problems with one command's references, each naming the reference and what exists."""
    problems: list[str] = []
    # A redirection's target is written by the command, not read from the repository.
    tokens = _tokens(re.sub(r"\d?>>?\s*\S+", "", command))
    for i, token in enumerate(tokens):
        name = PurePosixPath(token).name
        if name == "make":
            for target in tokens[i + 1 :]:
                if target in ("&&", "||", ";", "|") or target.startswith("-") or "=" in target:
                    break
                if target not in repo.make_targets:
                    problems.append(
                        f"make target '{target}' is not in the Makefile "
                        f"(targets: {', '.join(sorted(repo.make_targets))})"
                    )
        if re.fullmatch(r"python3?(\.\d+)?", name) and i + 2 < len(tokens) and tokens[i + 1] == "-m":
            module = tokens[i + 2]
            if not repo.module_exists(module):
                problems.append(f"module '{module}' (python -m {module}) is neither in the repository nor installed")
    for token in tokens:
        value = token.split("=", 1)[1] if token.startswith("--") and "=" in token else token
        if _looks_like_repo_path(value, repo) and not repo.exists(value):
            problems.append(f"'{value}' is not a file or folder of the repository")
    for namespace, key in _CONFIG_KEY.findall(command):
        if namespace == repo.project and key not in repo.settings:
            problems.append(f"config key '{namespace}:{key}' is not a declared setting")
    # `pulumi config set|get|rm <key>` without a namespace means the project's own key.
    match = re.search(r"\bpulumi\s+config\s+(?:set|get|rm)\s+((?:--\S+\s+)*)(\S+)", command)
    if match:
        key = match.group(2).strip("'\"")
        key = re.sub(r"[\[.].*$", "", key)  # --path 'key[0]' / key.sub
        if ":" not in key and key not in repo.settings:
            problems.append(f"config key '{key}' (pulumi config) is not a declared setting")
    return problems


def check_links(doc: Path, text: str, repo: Repo) -> list[tuple[int, str]]:
    """(line, problem) for each relative link whose file or anchor does not exist."""
    problems: list[tuple[int, str]] = []
    rel_doc = doc.resolve().relative_to(repo.root.resolve())
    for number, line, in_code, _ in _lines(text):
        if in_code:
            continue
        prose = _INLINE_CODE.sub("", line)
        for target in [*_LINK.findall(prose), *_IMAGE.findall(prose)]:
            if _SCHEME.match(target):
                continue
            path, _, anchor = target.partition("#")
            if not path:
                if anchor and anchor not in anchors(text):
                    problems.append((number, f"link '{target}': {doc.name} has no heading or anchor '#{anchor}'"))
                continue
            resolved = PurePosixPath(*_normalise(PurePosixPath(rel_doc).parent / path))
            if not repo.exists(str(resolved)):
                problems.append((number, f"link '{target}': {resolved} is not a file of the repository"))
                continue
            page = repo.root / resolved
            if anchor and page.suffix == ".md" and page.is_file() and anchor not in anchors(page.read_text()):
                problems.append((number, f"link '{target}': {page.name} has no heading or anchor '#{anchor}'"))
    return problems


def _normalise(path: PurePosixPath) -> list[str]:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return parts or ["."]


def check_setting_names(text: str, repo: Repo) -> list[tuple[int, str]]:
    """(line, problem) for each inline code span outside code blocks that reads as a setting of this
    project but is not one: a whole camelCase word whose first word starts a declared key
    (`renderLogsTable`, `gharchiveFreshnessHours`), so a misspelt or renamed key in prose is caught.
    Other camelCase names (`toPandas`, `retainOnDelete`) start with words no setting starts with."""
    first_words = {m.group(0) for m in map(_CAMEL_FIRST_WORD.match, repo.settings) if m}
    problems: list[tuple[int, str]] = []
    for number, line, in_code, _ in _lines(text):
        if in_code:
            continue
        for match in _INLINE_CODE.finditer(line):
            word = match.group(2).strip()
            first = _CAMEL_FIRST_WORD.match(word)
            if _CAMEL_CASE.fullmatch(word) and first and first.group(0) in first_words and word not in repo.settings:
                problems.append((number, f"'{word}' reads as a setting but is not a declared setting"))
    return problems


def check_doc(doc: Path, repo: Repo, text: str | None = None) -> list[str]:
    """Every problem of one Markdown file, as `path:line: message`."""
    text = doc.read_text() if text is None else text
    name = doc.resolve().relative_to(repo.root.resolve()).as_posix()
    found = [(n, p) for n, command in _commands(text) for p in check_command(command, repo)]
    found += check_setting_names(text, repo)
    found += check_links(doc, text, repo)
    return [f"{name}:{n}: {p}" for n, p in sorted(found, key=lambda found_at: found_at[0])]


def documents(repo: Repo) -> list[Path]:
    """README.md and every Markdown page under docs/ (and the folders' READMEs users read)."""
    names = [f for f in repo.files if f == "README.md" or (f.startswith("docs/") and f.endswith(".md"))]
    names += [f for f in ("glue_scripts/README.md", "components/README.md") if f in repo.files]
    return [repo.root / f for f in sorted(names)]


def check(repo: Repo | None = None) -> list[str]:
    """Every problem of every document, and whether the configuration reference is up to date."""
    repo = repo or Repo.load()
    problems = [p for doc in documents(repo) for p in check_doc(doc, repo)]
    # By name: mypy checks scripts/ as top-level modules, so a `from scripts import` would be a second copy.
    if not importlib.import_module("scripts.config_reference").up_to_date():
        problems.append("docs/configuration.md: differs from the declared settings: run `make pulumi-yaml`")
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
