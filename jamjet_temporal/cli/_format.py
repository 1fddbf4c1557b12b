"""What the ``jamjet`` commands print: progress lines, failures, audit events, checkpoints."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import typer

from jamjet_temporal.audit import AuditEvent, ChainVerdict
from jamjet_temporal.audit._keys import default_key_path


def say(line: str) -> None:
    """Print one progress line immediately (the demo is watched live)."""
    print(line, flush=True)


def note(line: str) -> None:
    """Print a status line about the command's surroundings (a server it started) on stderr.

    Stdout may carry the command's data (``--json``): nothing else goes there.
    """
    print(line, file=sys.stderr, flush=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``✗ message`` on stderr and return the exit to raise."""
    print(f"✗ {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def value_lines(title: str, value: object) -> list[str]:
    """``▸ Output:`` and the value under it, indented: text as it is, anything else as JSON."""
    shown = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    return [f"▸ {title}:", *(f"  {line}" for line in str(shown).rstrip().splitlines() or [""])]


def plain(value: object) -> object:
    """``75000.0`` → ``75000``: whole floats read as the amounts people typed."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def age(when: datetime) -> str:
    """How long ago ``when`` was: ``42s``, ``3m05s``."""
    seconds = int((datetime.now(UTC) - when).total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def describe_event(event: AuditEvent) -> str:
    """One line saying what an audit event records."""
    data, actor = event.data, event.actor
    if event.kind.startswith("policy."):
        rule = f"rule '{data['rule']}'" if data.get("rule") else "no rule"
        who = ", ".join(f"{k} {v}" for k, v in actor.items() if v and k != "workflow_type")
        text = f"{data['subject']} {data['decision']} · {data['reason']}"
        return text + f" ({rule}, scope {data['scope']})" + (f" · {who}" if who else "")
    if event.kind in ("tool.call", "model.call"):
        outcome = data.get("outcome")
        return (
            f"{data['tool']} {outcome} · {data['latency_ms']}ms · attempt {data['attempt']}"
            f" · {actor.get('worker') or '-'} · key {data['idempotency_key']}"
        )
    return json.dumps(data, sort_keys=True)


def chain_line(verdict: ChainVerdict) -> str:
    """Whether the store's hash chain recomputes, and over how many events."""
    if verdict.ok:
        return f"verified ({verdict.count} events in the store)"
    return f"BROKEN: {verdict.detail}"


def checkpoint_lines(verdict: ChainVerdict, trusted: dict[str, str]) -> list[str]:
    """Who signed the store's checkpoints, whether they are trusted, and what they cover."""
    lines = [f"signed checkpoints: {verdict.checkpoints} match the chain"]
    for signer, is_trusted in verdict.signers.items():
        if is_trusted:
            lines.append(f"  signer {signer}: trusted ({trusted[signer]})")
        elif trusted:
            lines.append(
                f"  signer {signer}: NOT TRUSTED (not one of the {len(trusted)} trusted key(s); "
                "if it is your workers' key, pin it with --trusted-key)"
            )
        else:
            lines.append(
                f"  signer {signer}: NOT TRUSTED (no trusted key: no local signing key at "
                f"{default_key_path()}; pin your workers' key with --trusted-key)"
            )
    if not verdict.ok:
        return lines
    if verdict.covered == verdict.count:
        lines.append(f"signed checkpoints cover all {verdict.count} events in the store")
    else:
        lines.append(
            f"events after seq {verdict.covered} are not yet covered by a signed checkpoint of "
            f"a trusted key ({verdict.count - verdict.covered} events): whoever can write the "
            "store could rewrite them unnoticed"
        )
    return lines
