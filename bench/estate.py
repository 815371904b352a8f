"""The Pulumi program itself: time to build the whole dev estate under mocks, and its resource count.

Built exactly as the infra tests build it (`tests.infra.harness.build_estate("dev", "Pulumi.dev.yaml")`),
in a fresh process: imports (pulumi, pulumi_aws, the components) are timed apart from the build.
There is no reference engine for this one; the table has no ratios.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.measure import Check, Clock, Context, Report, benchmark, run_isolated

STACK, STACK_FILE = "dev", "Pulumi.dev.yaml"


def build_dev_estate(clock: Clock) -> dict[str, Any]:
    started = time.perf_counter()
    from tests.infra.harness import build_estate

    imported = time.perf_counter() - started
    with clock:
        estate = build_estate(STACK, STACK_FILE)
    types = Counter(r.type for r in estate.resources)
    return {
        "resources": len(estate.resources),
        "distinct_urns": len({r.urn for r in estate.resources}),
        "resource_types": len(types),
        "components": sum(n for t, n in types.items() if t.startswith("dataplatform:")),
        "import_s": round(imported, 3),
        "top_types": types.most_common(5),
    }


@benchmark("estate", title="the Pulumi program: build the dev estate under mocks", order=90)
def bench_estate(ctx: Context) -> Report:
    build = run_isolated(build_dev_estate, "build dev estate (mocks)", log_dir=ctx.run_dir)
    figures = build.figures
    per_resource = build.work_s / figures["resources"] * 1000 if figures["resources"] else 0.0
    return Report(
        name="estate",
        title=f"the Pulumi program: build the `{STACK}` estate under mocks ({STACK_FILE})",
        measurements=[build],
        reference=None,
        rows_key="resources",
        rows_label="resources",
        checks=[
            Check("the estate has resources", figures["resources"] > 0, f"{figures['resources']:,}"),
            Check.equal("every resource has its own URN", figures["resources"], figures["distinct_urns"]),
        ],
        notes=[
            f"work = build_estate() only: {build.work_s:.2f} s, {per_resource:.1f} ms per resource; "
            f"importing the program's modules (pulumi, pulumi_aws, harness) took {figures['import_s']:.2f} s more",
            f"{figures['resources']:,} resources ({figures['components']} of them the program's components) of "
            f"{figures['resource_types']} types; most common: "
            + ", ".join(f"{t} x{n}" for t, n in figures["top_types"]),
        ],
    )
