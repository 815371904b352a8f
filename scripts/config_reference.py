"""Write docs/configuration.md, the configuration reference, from the settings the code declares (the
shared ones in components/config.py, then each registered pipeline's), as scripts/pulumi_yaml.py writes
Pulumi.yaml's `config:` block from the same declarations.

    python scripts/config_reference.py           # rewrite docs/configuration.md (make pulumi-yaml)
    python scripts/config_reference.py --check   # exit 1 if the file differs from what it would write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config import Setting, shared_settings  # noqa: E402  (the repo root is on the path only now)
from pipelines.registry import registered  # noqa: E402

REFERENCE = ROOT / "docs" / "configuration.md"
# Each pipeline's page, linked from its section (docs/pipelines/<name>.md).
PIPELINE_PAGES = "pipelines"

_INTRO = """\
# Configuration reference

<!-- Written by `make pulumi-yaml` (scripts/config_reference.py) from the settings the code declares;
do not edit by hand: `make test` fails while this file differs from the declarations. -->

Every key below belongs to the `dataplatform` namespace. Set one on the selected stack with

```bash
pulumi config set dataplatform:logRetentionDays 14
pulumi config set --path 'dataplatform:alertEmails[0]' oncall@example.com
```

or edit the stack's file (`Pulumi.dev.yaml`, `Pulumi.prod.yaml`). A key left unset takes the default
shown here (the same defaults are in `Pulumi.yaml`). `aws:region` is required. Every value is
validated at once: `pulumi preview` fails naming each bad key, its value and what is allowed, and a
misspelt key is an error, not ignored. Arrays are lists of strings.
"""


def _value(setting: Setting) -> str:
    """The default as the stack file would hold it."""
    default: Any = setting.default
    if setting.type == "array":
        return "`[" + ", ".join(str(v) for v in default) + "]`" if default else "`[]`"
    if setting.type == "boolean":
        return f"`{json.dumps(default)}`"
    if setting.type == "string" and default == "":
        return '`""`'
    return f"`{default}`"


def _cell(text: str) -> str:
    """Markdown table text: pipes escaped, and `<owner>` kept as text rather than read as an HTML tag."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    # Outside code spans (the even parts) `<` would open an HTML tag; inside one it is shown as is.
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def _table(settings: tuple[Setting, ...]) -> list[str]:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{s.key}` | {s.type} | {_value(s)} | {_cell(s.description)} |" for s in settings]
    return lines


def rendered() -> str:
    """The whole reference page: the shared settings, then each registered pipeline's, in registry order."""
    pipelines = registered()
    lines = [_INTRO, "## Shared settings", ""]
    lines += _table(shared_settings(tuple(p.name for p in pipelines)))
    for pipeline in pipelines:
        lines += [
            "",
            f"## {pipeline.name}",
            "",
            f"Settings of the {pipeline.name} pipeline ([how it works]({PIPELINE_PAGES}/{pipeline.name}.md)).",
            "",
        ]
        lines += _table(pipeline.config.settings) if pipeline.config.settings else ["It has no settings."]
    return "\n".join(lines) + "\n"


def up_to_date() -> bool:
    """Whether docs/configuration.md is the page `rendered()` gives (what --check and make docs-check ask)."""
    return REFERENCE.exists() and REFERENCE.read_text() == rendered()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the reference is up to date")
    args = parser.parse_args(argv)
    if args.check:
        if not up_to_date():
            print("docs/configuration.md differs from the declared settings: run `make pulumi-yaml`")
            return 1
        return 0
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(rendered())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
