"""The estate's pipelines, in build order: one line per pipeline (docs/adding-a-pipeline.md).

The program (__main__.py) builds every enabled one, the config loader validates every one's settings,
localrun runs them, and tests/infra/test_config.py keeps Pulumi.yaml equal to their declared settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigSection, Setting, StackConfig, declared_settings, load_config
from pipelines import covid, gharchive, render_logs, sales, sensor_timeseries
from pipelines.platform import Pipeline

# The program's project file.
PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

PIPELINES: tuple[Pipeline[Any, Any], ...] = (
    render_logs.PIPELINE,
    sales.PIPELINE,
    sensor_timeseries.PIPELINE,
    gharchive.PIPELINE,
    covid.PIPELINE,
)


@cache
def schema() -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's `config:` block: the schema users and the Pulumi CLI see."""
    return yaml.safe_load(PROJECT_FILE.read_text())["config"]


def registered() -> tuple[Pipeline[Any, Any], ...]:
    """The registered pipelines (read at call time, so a test may extend PIPELINES)."""
    return PIPELINES


def sections(pipelines: Sequence[Pipeline[Any, Any]] | None = None) -> dict[str, ConfigSection[Any]]:
    """Pipeline name -> its config section, in registry order."""
    return {p.name: p.config for p in (registered() if pipelines is None else pipelines)}


def settings(pipelines: Sequence[Pipeline[Any, Any]] | None = None) -> tuple[Setting, ...]:
    """Every setting of the stack configuration: the shared ones, then each pipeline's."""
    return declared_settings(sections(pipelines))


def load_stack_config(
    raw: Mapping[str, str],
    project: str,
    stack: str,
    region: str | None,
    pipelines: Sequence[Pipeline[Any, Any]] | None = None,
) -> StackConfig:
    """The validated stack configuration of the registered pipelines (components.config.load_config)."""
    return load_config(raw, project, stack, region, sections(pipelines))


def enabled(cfg: StackConfig, pipelines: Sequence[Pipeline[Any, Any]] | None = None) -> list[Pipeline[Any, Any]]:
    """The registered pipelines the stack builds, in registry order."""
    return [p for p in (registered() if pipelines is None else pipelines) if p.name in cfg.pipelines]
