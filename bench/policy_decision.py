"""Time of one tool-policy decision against a 100-rule policy (target: median < 50 µs).

    python bench/policy_decision.py [--batches 200] [--batch-size 500]

The policy mixes literal and glob rules; the tools asked about are decided by the last rules or
by no rule at all (default deny), the slowest cases. A second scope (a run-level blocked_tools
list) is in force too, as in a real worker. Each batch is timed with ``perf_counter_ns``; the
median per-decision time over the batches is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jamjet_temporal.policy import Policy, PolicyScopes, Rule, decide_tool


def hundred_rules() -> Policy:
    """90 rules that do not match the benchmark's tools, then 10 that do, last."""
    rules: list[Rule] = []
    for index in range(45):
        rules.append(Rule(match=f"service{index}.read_record", action="allow"))
        rules.append(Rule(match=f"service{index}.*delete*", action="block"))
    for index in range(5):
        rules.append(Rule(match=f"payments.wire_?{index}", action="require_approval"))
        rules.append(Rule(match=f"search.*.v{index}", action="audit"))
    assert len(rules) == 100
    return Policy(rules=tuple(rules), source="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    run = Policy(blocked_tools=("shell.*", "*drop_table*"), source="run")
    scopes = PolicyScopes(scopes=(("run", run), ("workflow", hundred_rules())))
    # Matched by rule 99 / rule 100, and by nothing (default deny).
    tools = ["payments.wire_x4", "search.web.v4", "unknown.tool.name"]
    expected = {decide_tool(scopes, tool).decision for tool in tools}
    assert expected == {"WAITING_FOR_APPROVAL", "AUDIT", "BLOCKED"}, expected

    per_call: list[float] = []
    for batch in range(args.batches):
        tool = tools[batch % len(tools)]
        start = time.perf_counter_ns()
        for _ in range(args.batch_size):
            decide_tool(scopes, tool)
        per_call.append((time.perf_counter_ns() - start) / args.batch_size / 1000)
    median = statistics.median(per_call)
    print(f"policy decision, 100 rules: median {median:.1f} µs (target < 50 µs)")


if __name__ == "__main__":
    main()
