"""Strategies for tasks that iterate: ``reflection`` (draft, critique, refine until confident).

Workflow code. Every iteration is one model call (its own activity, projected against the
task's budget before it is made); a budget halt ends the loop with the best answer so far.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from jamjet_temporal import llm
from jamjet_temporal.authoring._task import STRATEGY
from jamjet_temporal.budget._ledger import BudgetDecision
from jamjet_temporal.errors import BudgetExceededError
from jamjet_temporal.llm._types import ChatRequest

__all__ = ["Iteration", "ReflectionResult", "loop_until_confident"]

_ANSWER_FORMAT = 'Reply with JSON only: {"answer": "...", "confidence": 0.0-1.0}.'


class Iteration(BaseModel):
    """One pass of the loop, with its cost telemetry."""

    model_config = ConfigDict(frozen=True)

    n: int
    answer: str
    confidence: float
    spent: Decimal
    tokens: int
    decision: Literal["continue", "confident", "max_iters"]


class ReflectionResult(BaseModel):
    """The best answer, how the loop ended, and what it cost."""

    model_config = ConfigDict(frozen=True)

    answer: str | None
    confidence: float
    stopped: Literal["confident", "max_iters", "budget"]
    iterations: list[Iteration] = Field(default_factory=list)
    halt: BudgetDecision | None = None
    spent: Decimal = Decimal(0)
    cap: Decimal | None = None


def _parse(content: str | None) -> tuple[str, float]:
    try:
        data: JsonValue = json.loads(content or "")
    except json.JSONDecodeError:
        return content or "", 0.0
    if not isinstance(data, dict):
        return str(data), 0.0
    confidence = data.get("confidence")
    value = float(confidence) if isinstance(confidence, int | float) else 0.0
    return str(data.get("answer", "")), min(max(value, 0.0), 1.0)


async def loop_until_confident(
    question: str,
    *,
    threshold: float = 0.8,
    model: str = llm.DEFAULT_MODEL,
    max_output_tokens: int | None = None,
) -> ReflectionResult:
    """Draft an answer, then critique and refine it until confident, within the task's limits.

    Call it from a task declared ``@task(strategy="reflection", max_iters=..., max_cost=...)``:
    ``max_iters`` bounds the iterations and the task's budget halts the loop *before* a call
    that could cross it, returning the best answer so far.

    Args:
        question: What to answer.
        threshold: Confidence at which the loop stops.
        model: Model id.
        max_output_tokens: Output cap per call (also what the budget projects).

    Returns:
        The most confident answer, every iteration's cost and confidence, and why it stopped.
    """
    settings = STRATEGY.get()
    max_iters = (settings.max_iters if settings else None) or 8
    # Imported on use: a worker without the plugin can still load a workflow module that
    # imports the authoring API (budget scopes pull in token counting).
    from jamjet_temporal.budget._workflow import active_scopes

    scopes = active_scopes()
    scope = scopes[-1] if scopes else None
    messages: list[dict[str, JsonValue]] = [
        {"role": "system", "content": f"Answer the question. {_ANSWER_FORMAT}"},
        {"role": "user", "content": question},
    ]
    iterations: list[Iteration] = []
    best: Iteration | None = None
    halt: BudgetDecision | None = None
    stopped: Literal["confident", "max_iters", "budget"] = "max_iters"
    for n in range(1, max_iters + 1):
        try:
            result = await llm.chat(
                ChatRequest(
                    model=model, messages=messages, json_output=True, max_tokens=max_output_tokens
                )
            )
        except BudgetExceededError as err:
            halt, stopped = err.decision, "budget"
            break
        answer, confidence = _parse(result.content)
        done = confidence >= threshold
        iteration = Iteration(
            n=n,
            answer=answer,
            confidence=confidence,
            spent=scope.ledger.spent_cost if scope else Decimal(0),
            tokens=scope.ledger.spent_tokens if scope else 0,
            decision="confident" if done else ("max_iters" if n == max_iters else "continue"),
        )
        iterations.append(iteration)
        if best is None or confidence > best.confidence:
            best = iteration
        if done:
            stopped = "confident"
            break
        messages = [
            *messages[:2],
            {"role": "assistant", "content": result.content or ""},
            {
                "role": "user",
                "content": "Critique that answer: what is missing, wrong or unsupported? "
                f"Then give an improved answer. {_ANSWER_FORMAT}",
            },
        ]
    return ReflectionResult(
        answer=best.answer if best else None,
        confidence=best.confidence if best else 0.0,
        stopped=stopped,
        iterations=iterations,
        halt=halt,
        spent=scope.ledger.spent_cost if scope else Decimal(0),
        cap=scope.ledger.budget.max_cost if scope else None,
    )
