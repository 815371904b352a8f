"""Write Pulumi.yaml's `config:` block from the settings the code declares (the shared ones in
components/config.py, then each registered pipeline's), so adding a pipeline never means editing it by hand.

    python scripts/pulumi_yaml.py           # rewrite the block in place (make pulumi-yaml)
    python scripts/pulumi_yaml.py --check   # exit 1 if the file differs from what it would write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.registry import settings  # noqa: E402  (the repo root is on the path only now)

PULUMI_YAML = ROOT / "Pulumi.yaml"


class _Dumper(yaml.SafeDumper):
    """Lists and one-key leaf mappings (`items: {type: string}`) inline, everything else as blocks."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(
    dict,
    lambda d, v: d.represent_mapping(
        "tag:yaml.org,2002:map", v.items(), flow_style=len(v) == 1 and not isinstance(next(iter(v.values())), dict)
    ),
)


def rendered(current: str) -> str:
    """`current` with everything from its `config:` line on replaced by the declared settings."""
    head, marker, _ = current.partition("\nconfig:\n")
    if not marker:
        raise ValueError("Pulumi.yaml has no top-level `config:` block to replace")
    block = yaml.dump(
        {"config": {s.key: s.schema() for s in settings()}},
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,
        allow_unicode=True,
        default_flow_style=False,
    )
    return head + "\n" + block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether Pulumi.yaml is up to date")
    args = parser.parse_args(argv)
    current = PULUMI_YAML.read_text()
    wanted = rendered(current)
    if args.check:
        if current != wanted:
            print("Pulumi.yaml's config block differs from the declared settings: run `make pulumi-yaml`")
            return 1
        return 0
    PULUMI_YAML.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
