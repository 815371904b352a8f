"""make docs-check (scripts/docs_check.py): the repository's documents pass, and each kind of broken
reference is reported with its file, line and what is wrong. The configuration reference
(scripts/config_reference.py) is what the declared settings give."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.registry import settings
from scripts import config_reference, docs_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def repo() -> docs_check.Repo:
    return docs_check.Repo.load(ROOT)


def problems(repo: docs_check.Repo, text: str, at: str = "docs/example.md") -> list[str]:
    """The problems of `text` as if it were the page `at` of the repository."""
    return docs_check.check_doc(ROOT / at, repo, text)


def test_the_repository_documents_pass(repo: docs_check.Repo) -> None:
    assert docs_check.check(repo) == []


def test_readme_and_every_docs_page_are_checked(repo: docs_check.Repo) -> None:
    checked = {p.relative_to(ROOT).as_posix() for p in docs_check.documents(repo)}
    assert {"README.md", "docs/runbook.md", "docs/configuration.md", "glue_scripts/README.md"} <= checked
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")} <= checked
    assert all(name.endswith(".md") for name in checked)


def test_existing_references_pass(repo: docs_check.Repo) -> None:
    text = """\
```bash
make run && make test
python -m smoke --stack dev
.venv/bin/python -m bench --only render-logs
python scripts/pr_stack_config.py pr-7 --from Pulumi.dev.yaml --set dataplatform:removeDataOnDestroy=true
pulumi config set dataplatform:logRetentionDays 14
pulumi config set --path 'dataplatform:ciDeployEnvironments[0]' prod
pulumi config set aws:region eu-west-1
aws s3 cp sample_data/sales/sales_2024_03.csv "$(pulumi stack output sales_upload_to)"
aws s3 cp render_logs.csv s3://bucket/render-logs/ > /tmp/out.txt
```

See [the runbook](runbook.md#dead-letter-queue), [the README](../README.md) and [this page](#a-heading).

## A heading
"""
    assert problems(repo, text) == []


def test_a_missing_file_is_named(repo: docs_check.Repo) -> None:
    text = "intro\n\n```bash\npython scripts/no_such_script.py --check\n```\n"
    assert problems(repo, text) == [
        "docs/example.md:4: 'scripts/no_such_script.py' is not a file or folder of the repository"
    ]


def test_a_missing_top_level_file_is_named(repo: docs_check.Repo) -> None:
    text = "```bash\npulumi stack init staging && cp Pulumi.staging.yaml /tmp/\n```\n"
    assert problems(repo, text) == [
        "docs/example.md:2: 'Pulumi.staging.yaml' is not a file or folder of the repository"
    ]


def test_an_option_value_path_is_checked(repo: docs_check.Repo) -> None:
    text = "```sh\n.venv/bin/python glue_scripts/sensor_timeseries.py --input_path=sample_data/no_sensor\n```\n"
    assert problems(repo, text) == [
        "docs/example.md:2: 'sample_data/no_sensor' is not a file or folder of the repository"
    ]


def test_a_missing_make_target_is_named(repo: docs_check.Repo) -> None:
    found = problems(repo, "```bash\nmake deploy\n```\n")
    assert len(found) == 1
    assert found[0].startswith("docs/example.md:2: make target 'deploy' is not in the Makefile (targets: ")
    assert "docs-check" in found[0] and "run" in found[0]


def test_an_inline_make_command_is_checked(repo: docs_check.Repo) -> None:
    found = problems(repo, "Run `make tests` first.\n")
    assert [p.split(" (targets")[0] for p in found] == ["docs/example.md:1: make target 'tests' is not in the Makefile"]


def test_a_missing_module_is_named(repo: docs_check.Repo) -> None:
    text = "```bash\n# a comment\npython -m smoke.no_such_module --stack dev\npython -m no_such_tool_anywhere\n```\n"
    assert problems(repo, text) == [
        "docs/example.md:3: module 'smoke.no_such_module' (python -m smoke.no_such_module) is neither in the "
        "repository nor installed",
        "docs/example.md:4: module 'no_such_tool_anywhere' (python -m no_such_tool_anywhere) is neither in the "
        "repository nor installed",
    ]


def test_an_unknown_config_key_is_named(repo: docs_check.Repo) -> None:
    text = """\
```bash
pulumi config set dataplatform:logRetentionDay 14
pulumi config set --path 'dataplatform:ciDeployEnvironment[0]' prod
pulumi config set natGateways true
```
"""
    assert problems(repo, text) == [
        "docs/example.md:2: config key 'dataplatform:logRetentionDay' is not a declared setting",
        "docs/example.md:3: config key 'dataplatform:ciDeployEnvironment' is not a declared setting",
        "docs/example.md:4: config key 'natGateways' (pulumi config) is not a declared setting",
    ]


def test_a_continued_command_is_reported_at_its_first_line(repo: docs_check.Repo) -> None:
    text = "```bash\naws stepfunctions start-execution \\\n  --input x \\\n  && make nothing-here\n```\n"
    found = problems(repo, text)
    assert [p.split(" (targets")[0] for p in found] == [
        "docs/example.md:2: make target 'nothing-here' is not in the Makefile"
    ]


def test_commands_in_other_languages_are_not_commands(repo: docs_check.Repo) -> None:
    text = "```python\nimport scripts.no_such_module\n```\n\n```text\nmake nothing-here\n```\n"
    assert problems(repo, text) == []


def test_a_broken_link_is_named(repo: docs_check.Repo) -> None:
    text = "# Title\n\nSee [adding](adding-a-pipeline.md) and [nothing](no-such-page.md).\n"
    assert problems(repo, text) == [
        "docs/example.md:3: link 'no-such-page.md': docs/no-such-page.md is not a file of the repository"
    ]


def test_a_broken_anchor_is_named(repo: docs_check.Repo) -> None:
    text = "# Title\n\n[ok](#title), [other](runbook.md#no-such-section), [here](#missing)\n"
    assert problems(repo, text) == [
        "docs/example.md:3: link 'runbook.md#no-such-section': runbook.md has no heading or anchor '#no-such-section'",
        "docs/example.md:3: link '#missing': example.md has no heading or anchor '#missing'",
    ]


def test_links_inside_code_are_not_links(repo: docs_check.Repo) -> None:
    assert problems(repo, "`[x](nowhere.md)`\n\n```text\n[x](nowhere.md)\n```\n") == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Dead-letter queue", "dead-letter-queue"),
        ("`gharchive` stale: no new hour", "gharchive-stale-no-new-hour"),
        ("Re-baseline GH Archive (the `jobs` item)", "re-baseline-gh-archive-the-jobs-item"),
        ("Costs & times", "costs--times"),
    ],
)
def test_anchors_follow_githubs_heading_slugs(heading: str, anchor: str) -> None:
    assert anchor in docs_check.anchors(f"## {heading}\n")


def test_repeated_headings_and_html_anchors() -> None:
    text = '## Failure modes\n\n## Failure modes\n\n<a id="state-machine-failed"></a>\n```bash\n# not a heading\n```\n'
    assert docs_check.anchors(text) == {"failure-modes", "failure-modes-1", "state-machine-failed"}


def test_make_targets_are_rule_names_only() -> None:
    makefile = "X := 1\n.PHONY: a b\na: b  ## doc\n\techo a:\nb c:\n$(VENV)/.installed: x\n"
    assert docs_check.make_targets(makefile) == {"a", "b", "c"}


def test_the_configuration_reference_lists_every_declared_setting_once() -> None:
    page = config_reference.rendered()
    for setting in settings():
        assert page.count(f"| `{setting.key}` |") == 1, setting.key


def test_the_configuration_reference_shows_defaults_as_stack_files_hold_them() -> None:
    page = config_reference.rendered()
    assert "| `pipelines` | array | `[render-logs, sales, sensor-timeseries, gharchive, covid19]` |" in page
    assert "| `removeDataOnDestroy` | boolean | `false` |" in page
    assert '| `ciGithubRepository` | string | `""` | &lt;owner>/&lt;repository> (exactly' in page
    assert "| `logRetentionDays` | integer | `30` |" in page


def test_an_out_of_date_configuration_reference_fails_the_check(
    repo: docs_check.Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration reference\n")
    monkeypatch.setattr(config_reference, "REFERENCE", stale)
    assert config_reference.main(["--check"]) == 1
    assert docs_check.check(repo)[-1] == (
        "docs/configuration.md: differs from the declared settings: run `make pulumi-yaml`"
    )
    assert config_reference.main([]) == 0
    assert config_reference.main(["--check"]) == 0


def test_a_misspelt_setting_in_prose_is_named(repo: docs_check.Repo) -> None:
    text = (
        "Set `renderLogsTable` and `gharchiveFreshnesHours`; `renderLogs*` and `<prefix>RunTimeoutMinutes` are\n"
        "patterns, `toPandas` and `retainOnDelete` are not settings.\n"
    )
    assert problems(repo, text) == [
        "docs/example.md:1: 'gharchiveFreshnesHours' reads as a setting but is not a declared setting"
    ]
