"""What a run is doing now, in Temporal's Web UI: the run's *current details*.

Runs inside the workflow sandbox. The current details are the SDK's per-run text
(``workflow.set_current_details``), which the Web UI and ``temporal workflow metadata`` read
with the built-in ``__temporal_workflow_metadata`` query. They are not recorded in history: a
replay computes them again from the run's own state, so showing them is replay-safe and changes
no command. A run whose worker is gone cannot answer, and the UI shows no current details.

Each part of the runtime that waits (an approval, a pipeline's ``wait`` node) shows one
paragraph while it waits and takes it away when it goes on; paragraphs that others show,
including the user's own code, are kept. The text is Temporal markdown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio import workflow

__all__ = ["args_text", "deadline_text", "event_line", "people", "show"]

_SEPARATOR = "\n\n"  # one paragraph per thing the run waits for (markdown)


def show(line: str | None, *, instead_of: str | None = None) -> str | None:
    """Show ``line`` in the run's current details, in place of ``instead_of`` (the line this
    caller showed before); ``line=None`` takes ``instead_of`` away.

    Returns:
        ``line``: what the caller shows now, to pass as ``instead_of`` next time.
    """
    if not workflow.in_workflow():
        # A run evicted from the worker's cache unwinds its waits (``finally`` blocks) outside
        # the workflow's event loop: nothing to show there, and nobody to show it to.
        return line
    current = workflow.get_current_details()
    lines = [part for part in current.split(_SEPARATOR) if part] if current else []
    if instead_of is not None and instead_of in lines:
        index = lines.index(instead_of)
        if line is None:
            del lines[index]
        else:
            lines[index] = line
    elif line is not None:
        lines.append(line)
    text = _SEPARATOR.join(lines)
    if text != current:
        workflow.set_current_details(text)
    return line


def args_text(args: Mapping[str, object], *, limit: int = 4) -> str:
    """Arguments as people read them: a numeric ``amount`` as dollars, the rest ``name: value``.

    ``{"amount": 50000, "to": "ACME GmbH"}`` → ``$50,000 (to: ACME GmbH)``, as the approvals
    page shows the amount.
    """
    shown: list[str] = []
    amount = args.get("amount")
    money = isinstance(amount, int | float) and not isinstance(amount, bool)
    if money:
        assert isinstance(amount, int | float)
        shown.append(_dollars(amount))
    rest = [(k, v) for k, v in args.items() if not (money and k == "amount")]
    named = [f"{k}: {_value(v)}" for k, v in rest[:limit]]
    if len(rest) > limit:
        named.append(f"+{len(rest) - limit} more")
    if named:
        shown.append(f"({', '.join(named)})")
    return " ".join(shown)


def deadline_text(deadline: datetime | None) -> str | None:
    """``times out 2025-06-01 12:00 UTC`` (None without a deadline)."""
    if deadline is None:
        return None
    when = deadline.astimezone(UTC) if deadline.tzinfo else deadline
    return f"times out {when.strftime('%Y-%m-%d %H:%M')} UTC"


def people(names: list[str], *, limit: int = 5) -> str:
    """``alice@example.com, bob@example.com`` (``+N more`` past ``limit``)."""
    shown = names[:limit]
    more = f" +{len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more if shown else "nobody"


def _dollars(amount: float) -> str:
    if float(amount).is_integer():
        return f"${int(amount):,}"
    return f"${amount:,.2f}"


def _value(value: object, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
    text = " ".join(text.split()).replace("`", "'")  # one line; no stray code span
    return text if len(text) <= width else text[: width - 1] + "…"


def event_line(node: str, event: str, deadline: datetime | None) -> str:
    """What a pipeline's ``wait`` node waits for, and the command that sends it.

    ``waiting for event 'reviewed' (node review) · `jamjet resume exec_1a2b --event reviewed
    --data '{...}'```
    """
    run_id = workflow.info().workflow_id
    parts = [f"waiting for event '{event}' (node {node})"]
    when = deadline_text(deadline)
    if when is not None:
        parts.append(when)
    parts.append(f"`jamjet resume {run_id} --event {event} --data '{{...}}'`")
    return " · ".join(parts)
