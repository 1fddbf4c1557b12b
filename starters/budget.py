"""Run gate 4 end to end and print the showcase's lines from the real figures.

    .venv/bin/python -m starters.budget

The local model server scripts each iteration's answer, confidence and token usage; the
runtime prices them (``reasoner-xl``: $1 / $60 per million input / output tokens), projects
each next call, and halts before the one that would cross the $0.50 cap.

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.budget import money
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptUsage
from jamjet_temporal.plugin import AuditConfig, BudgetConfig, LLMConfig
from jamjet_temporal.strategies import ReflectionResult
from starters._stack import stack
from workflows.budget import MODEL, research

TASK_QUEUE = "budget-demo"
PRICES = {MODEL: {"input_per_mtok": "1", "output_per_mtok": "60"}}
#: (confidence, output tokens) per iteration: $0.08, $0.08, $0.11, $0.14 with 200 input tokens.
SCRIPT = [(0.62, 1330), (0.71, 1330), (0.78, 1830), (0.81, 2330), (0.93, 1000)]


def script(marker: str) -> list[ScriptRule]:
    """One rule per iteration, keyed by the previous answer, so a retried call (after a
    crash) gets the same answer as the first try did, as a deterministic model would."""

    def reply(n: int) -> ScriptResponse:
        confidence, out = SCRIPT[n - 1]
        return ScriptResponse(
            content=json.dumps({"answer": f"draft {n} {marker}", "confidence": confidence}),
            usage=ScriptUsage(prompt_tokens=200, completion_tokens=out),
        )

    later = [
        ScriptRule(marker=f"draft {n - 1} {marker}", responses=[reply(n)])
        for n in range(2, len(SCRIPT) + 1)
    ]
    return [*later, ScriptRule(marker=marker, responses=[reply(1)])]


def lines_for(result: ReflectionResult) -> list[str]:
    """The showcase's console lines, from the run's own telemetry."""
    lines = [
        f"▸ [reasoner] iter {it.n} · {money(it.spent)} · confidence {it.confidence:.2f}"
        for it in result.iterations
    ]
    if result.halt is not None:
        lines.append(f"▸ Budget: {result.halt.reason}")
        lines.append(f"▸ Decision: HALT · returning best-so-far ({result.confidence:.2f})")
    else:
        lines.append(f"▸ Decision: {result.stopped.upper()} · {money(result.spent)} spent")
    return lines


async def main(
    audit_url: str | None = None, address: str | None = None
) -> tuple[list[str], ReflectionResult]:
    """Run the demo; returns (and prints) the showcase's console lines, and the result.

    Args:
        audit_url: The audit store; None: see ``starters._stack``.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    async with stack(address, audit_url=audit_url) as where, ModelServer() as model:
        run_id = f"exec_{uuid.uuid4().hex[:8]}"
        where.announce(run_id)
        model.add_rules(script(run_id))
        config = JamJetConfig(
            llm=LLMConfig(base_url=model.base_url),
            audit=AuditConfig(store=where.audit_store),
            budget=BudgetConfig(prices=PRICES),
        )
        client = await where.connect(plugins=[JamJetPlugin(config)])
        async with Worker(client, task_queue=TASK_QUEUE, workflows=[research]):
            result = await client.execute_workflow(
                research.run,
                f"Is the migration safe? [{run_id}]",
                id=run_id,
                task_queue=TASK_QUEUE,
            )
    lines = lines_for(result)
    for line in lines:
        print(line, flush=True)
    where.inspect(run_id)
    return lines, result


if __name__ == "__main__":
    asyncio.run(main())
