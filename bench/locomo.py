"""LoCoMo evidence recall of ``engram.context_for`` (retrieval quality without an LLM).

Each LoCoMo conversation goes through Engram's normal ingestion as one user's sessions: every
turn becomes a message (an episode, with its ``dia_id``, speaker and the session's date; an
image a speaker shared is given by its caption), and the session's ``observation`` sentences
become that session's facts (standing in for the LLM extraction), each linked to the
``dia_id``s it came from. Then every question of categories 1-4 is asked of ``context_for`` as
the topic, at budgets of 250, 500, 1000 and 2000 tokens (cl100k, counted on the returned block),
and evidence recall is the share of the question's gold ``dia_id``s covered by the facts and
turns returned.

    python bench/locomo.py --data ../shared/data/locomo/locomo-dev.json [--store URL]

The data is CC BY-NC 4.0: it is read from where it lies and never copied into this repository.
The last line is ``locomo recall@1000: 0.XXX over N questions``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, Message, open_memory

BUDGETS = (250, 500, 1000, 2000)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


def parse_date(text: str) -> datetime:
    """LoCoMo's ``1:56 pm on 8 May, 2023`` as an aware datetime (UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def dia_ids(value: Any) -> list[str]:
    """Gold or source ``dia_id``s; LoCoMo sometimes packs several in one string."""
    items = value if isinstance(value, list) else [value]
    return [part for item in items for part in re.split(r"[,;\s]+", str(item)) if part]


def sessions(conv: dict[str, Any]) -> list[tuple[int, datetime, list[dict[str, Any]]]]:
    body = conv["conversation"]
    out = []
    for key, turns in body.items():
        found = re.fullmatch(r"session_(\d+)", key)
        if found and isinstance(turns, list) and turns:
            n = int(found.group(1))
            out.append((n, parse_date(body[f"session_{n}_date_time"]), turns))
    return sorted(out)


def ingest(memory: Any, conv: dict[str, Any]) -> tuple[str, int, int]:
    user = conv["sample_id"]
    observations = conv.get("observation", {})
    n_turns = n_facts = 0
    for n, at, turns in sessions(conv):
        messages = []
        for turn in turns:
            content = turn["text"]
            if turn.get("blip_caption"):
                content += f" [shares a photo: {turn['blip_caption']}]"
            messages.append(
                Message(
                    role="user", content=content, speaker=turn["speaker"], dia_id=turn["dia_id"]
                )
            )
        facts = [
            FactInput(value=text, sources=dia_ids(src))
            for per_speaker in observations.get(f"session_{n}_observation", {}).values()
            for text, src in per_speaker
        ]
        memory.ingest(
            IngestRequest(user=user, session=f"s{n}", at=at, messages=messages, facts=facts)
        )
        n_turns += len(messages)
        n_facts += len(facts)
    return user, n_turns, n_facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="a LoCoMo JSON file")
    parser.add_argument("--store", help="memory store URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: no LoCoMo file at {args.data}", file=sys.stderr)
        return 0
    data = json.loads(args.data.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        memory = open_memory(args.store or f"sqlite:///{tmp}/memory.db")
        recall = {b: 0.0 for b in BUDGETS}
        by_cat = {c: {b: 0.0 for b in BUDGETS} for c in CATEGORIES}
        per_cat = dict.fromkeys(CATEGORIES, 0)
        asked = 0
        latencies: list[float] = []
        users = []
        for conv in data:
            user, n_turns, n_facts = ingest(memory, conv)
            users.append(user)
            print(f"{user}: {n_turns} turns, {n_facts} facts ingested")
            for qa in conv["qa"]:
                if qa.get("category") not in CATEGORIES:
                    continue
                gold = set(dia_ids(qa.get("evidence", [])))
                if not gold:
                    continue
                asked += 1
                per_cat[qa["category"]] += 1
                for budget in BUDGETS:
                    start = time.perf_counter()
                    ctx = memory.context(
                        ContextRequest(user=user, topic=qa["question"], budget_tokens=budget)
                    )
                    latencies.append(time.perf_counter() - start)
                    assert ctx.tokens_used <= budget
                    share = len(ctx.covered & gold) / len(gold)
                    recall[budget] += share
                    by_cat[qa["category"]][budget] += share
        if args.store:
            for user in users:
                memory.forget(user)
        memory.close()
    latencies.sort()
    print(
        f"context_for latency: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms"
    )
    for cat, name in CATEGORIES.items():
        if per_cat[cat]:
            cells = "  ".join(f"@{b}: {by_cat[cat][b] / per_cat[cat]:.3f}" for b in BUDGETS)
            print(f"  {name:<12} ({per_cat[cat]:>3} questions)  {cells}")
    for budget in BUDGETS[:-1]:
        if budget != 1000:
            print(f"locomo recall@{budget}: {recall[budget] / asked:.3f}")
    print(f"locomo recall@{BUDGETS[-1]}: {recall[BUDGETS[-1]] / asked:.3f}")
    print(f"locomo recall@1000: {recall[1000] / asked:.3f} over {asked} questions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
