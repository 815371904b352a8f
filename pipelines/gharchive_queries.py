"""Athena named queries over the GH Archive events table (glue_scripts/gharchive_events.py writes it).

Plain Python, no Pulumi: pipelines/gharchive.py turns each entry into an `aws.athena.NamedQuery`,
and the tests run every query (transpiled from Athena's Trino dialect to Spark SQL) over the job's
real output. The columns used are the job's output columns; `"date"` is quoted because DATE is a
reserved word in Athena. Each query reads the whole table: Athena scans only the columns named,
and adding `WHERE "date" BETWEEN '...' AND '...'` restricts it to those partitions.
Every ORDER BY ends in a unique key, so results are deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NamedQuery:
    description: str
    sql: str


_PART = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def table_reference(table: str) -> str:
    """`table` or `database.table` as an Athena identifier, quoting parts that need it (`"my-db".events`)."""
    parts = table.split(".")
    if not 1 <= len(parts) <= 2 or not all(_PART.fullmatch(p) for p in parts):
        raise ValueError(f"table {table!r} must be `table` or `database.table` of letters, digits, _ and -")
    return ".".join(p if _PLAIN.fullmatch(p) else f'"{p}"' for p in parts)


def named_queries(table: str) -> dict[str, NamedQuery]:
    """Named queries by short kebab-case name, reading `table` (`table` or `database.table`)."""
    t = table_reference(table)
    return {
        "events-per-type-per-day": NamedQuery(
            description="Events per type per day, with the distinct actors and repositories behind them.",
            sql=f"""SELECT
  "date",
  event_type,
  count(*) AS events,
  count(DISTINCT actor_id) AS actors,
  count(DISTINCT repo_id) AS repos
FROM {t}
GROUP BY "date", event_type
ORDER BY "date", events DESC, event_type""",
        ),
        "top-repositories": NamedQuery(
            description="The 20 repositories with the most events, and how many distinct actors produced them.",
            sql=f"""SELECT
  repo_name,
  count(*) AS events,
  count(DISTINCT actor_id) AS distinct_actors
FROM {t}
GROUP BY repo_name
ORDER BY events DESC, distinct_actors DESC, repo_name
LIMIT 20""",
        ),
        "pushes-per-repository-per-day": NamedQuery(
            description=(
                "Per day, the 20 repositories with the most pushed commits: pushes, commits "
                "(sum of push_size), distinct commits and pushers."
            ),
            sql=f"""WITH daily AS (
  SELECT
    "date",
    repo_name,
    count(*) AS pushes,
    coalesce(sum(push_size), 0) AS commits,
    coalesce(sum(push_distinct_size), 0) AS distinct_commits,
    count(DISTINCT actor_id) AS pushers
  FROM {t}
  WHERE event_type = 'PushEvent'
  GROUP BY "date", repo_name
),
ranked AS (
  SELECT
    daily.*,
    row_number() OVER (PARTITION BY "date" ORDER BY commits DESC, pushes DESC, repo_name) AS day_rank
  FROM daily
)
SELECT "date", day_rank, repo_name, pushes, commits, distinct_commits, pushers
FROM ranked
WHERE day_rank <= 20
ORDER BY "date", day_rank""",
        ),
        "top-human-actors": NamedQuery(
            description="The 20 most active people (bot accounts, logins ending in [bot], left out).",
            sql=f"""SELECT
  actor_login,
  count(*) AS events,
  count(DISTINCT repo_id) AS repos,
  count_if(event_type = 'PushEvent') AS pushes,
  count_if(event_type = 'PullRequestEvent' AND payload_action = 'opened') AS pull_requests_opened
FROM {t}
WHERE actor_login NOT LIKE '%[bot]'
GROUP BY actor_login
ORDER BY events DESC, actor_login
LIMIT 20""",
        ),
        "pull-requests-per-repository": NamedQuery(
            description="The 20 repositories merging the most pull requests: opened, merged and closed unmerged.",
            sql=f"""SELECT
  repo_name,
  count_if(payload_action = 'opened') AS opened,
  count_if(payload_action = 'closed' AND pr_merged) AS merged,
  count_if(payload_action = 'closed' AND NOT pr_merged) AS closed_unmerged
FROM {t}
WHERE event_type = 'PullRequestEvent'
GROUP BY repo_name
ORDER BY merged DESC, opened DESC, repo_name
LIMIT 20""",
        ),
    }
