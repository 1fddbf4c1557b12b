"""``context_for`` latency at scale: 100,000 facts over 1,000 users, on SQLite and PostgreSQL.

    python bench/memory_latency.py [--users 1000] [--facts-per-user 100] [--queries 2000]
                                   [--seed 7] [--pg URL | --no-pg]

Each user's facts come from a seeded generator over a small vocabulary: attribute facts
(location, employer, favourite food ...) restated with new values session after session, so
values supersede each other (and sometimes repeat, and merge), and free-text statements
("ana is training for a marathon every morning"). They are ingested the normal way, one
``IngestRequest`` per session. Then, after a warm-up, ``context_for`` (``memory.context``,
budget 400 tokens) is asked of random users about random topics drawn from the same
vocabulary, and its latency is timed.

SQLite runs on a temporary file. PostgreSQL runs on ``--pg`` (default: the local test server,
schema ``engram_bench``); the schema must not exist yet, and is dropped afterwards. When the
server cannot be reached, PostgreSQL is skipped with the reason. Figures are printed, never
asserted; the target is p95 <= 20 ms on SQLite. Lines:

    sqlite ingest: 100000 facts in 8.1 s (12300 facts/s; 5524 merged, 25938 superseding)
    sqlite context_for: p50 X ms, p95 Y ms over 2000 queries (100000 facts, 1000 users)
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, SQLMemory, open_memory

DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test?schema=engram_bench"
BUDGET_TOKENS = 400
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

ATTRIBUTES: dict[str, list[str]] = {
    "location": "Pune Amsterdam Berlin Lisbon Austin Toronto Nairobi Osaka Bogota Oslo".split(),
    "employer": "Acme Globex Initech Umbrella Hooli Stark Wayne Tyrell Cyberdyne Soylent".split(),
    "favourite food": "ramen tacos biryani pizza falafel sushi pho paella dumplings".split(),
    "favourite band": "Radiohead Queen Portishead Daft-Punk Bjork ABBA Khruangbin".split(),
    "hobby": "climbing pottery chess gardening surfing birding baking sailing".split(),
    "pet": "cat dog parrot rabbit tortoise goldfish hamster".split(),
    "car": "Volvo Tesla Fiat Toyota Skoda Renault bicycle".split(),
    "programming language": "Python Rust Go TypeScript Kotlin Elixir Haskell".split(),
    "role": "engineer designer manager researcher analyst founder".split(),
    "timezone": "CET IST PST EST JST EAT".split(),
}
VERBS = [
    "enjoys",
    "is planning",
    "talked about",
    "is learning",
    "bought gear for",
    "recommended",
    "complained about",
    "wants to try",
]
THINGS = [
    "a hiking trip to the alps",
    "sourdough bread baking",
    "the jazz festival downtown",
    "rust async runtimes",
    "marathon training",
    "a kitchen renovation",
    "the quarterly budget review",
    "learning japanese",
    "a road trip along the coast",
    "board game nights",
    "the new espresso machine",
    "vegetable gardening on the balcony",
    "kubernetes cost reports",
    "a wedding in september",
    "photography workshops",
    "the release notes draft",
    "swimming lessons for the kids",
    "a podcast about history",
    "the policy violations panel",
    "winter camping",
    "electric bikes",
    "the book club",
    "salsa dancing classes",
    "a home solar installation",
]
WHEN = ["last weekend", "every morning", "this spring", "lately", "next month", "on fridays"]
TOPICS = [
    "where does the user live, location",
    "who is the employer, which company",
    "favourite food for dinner",
    "what music, favourite band",
    "hobby for the weekend",
    "pet at home",
    "which car do they drive",
    "programming language preference",
    "role at work",
    "timezone for scheduling a call",
    *THINGS,
    "plans for next month",
    "hiking and camping",
    "coffee and espresso",
    "kids swimming",
    "budget review report",
]


@dataclass(frozen=True)
class Figures:
    """What one backend measured."""

    facts: int
    merged: int
    superseded: int
    ingest_s: float
    latencies_ms: list[float]


def sessions_of(
    rng: random.Random, user: str, facts_per_user: int, sessions: int
) -> list[IngestRequest]:
    """One user's sessions: ``facts_per_user`` facts spread over ``sessions`` sessions."""
    sessions = max(1, min(sessions, facts_per_user))
    out = []
    for s in range(sessions):
        n_facts = facts_per_user // sessions + (s < facts_per_user % sessions)
        names = list(ATTRIBUTES)
        rng.shuffle(names)
        # About 40% attribute facts, each attribute at most once per session (a new value in
        # a later session supersedes; the same value merges); the rest free-text statements.
        n_attrs = min(len(names), round(n_facts * 0.4))
        facts = [FactInput(attribute=a, value=rng.choice(ATTRIBUTES[a])) for a in names[:n_attrs]]
        facts += [
            FactInput(value=f"{user} {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(WHEN)}")
            for _ in range(n_facts - n_attrs)
        ]
        at = T0 + timedelta(days=7 * s, hours=rng.randrange(12))
        out.append(IngestRequest(user=user, session=f"s{s + 1}", at=at, facts=facts))
    return out


def measure(
    memory: SQLMemory,
    users: int,
    facts_per_user: int,
    sessions: int,
    queries: int,
    seed: int,
) -> Figures:
    """Ingest every user's sessions, then time ``queries`` contexts after a warm-up."""
    rng = random.Random(seed)
    names = [f"user{n:05d}" for n in range(users)]
    facts = merged = superseded = 0
    start = time.perf_counter()
    for user in names:
        for session in sessions_of(rng, user, facts_per_user, sessions):
            result = memory.ingest(session)
            facts += len(session.facts)
            merged += result.merged
            superseded += result.superseded
    ingest_s = time.perf_counter() - start

    asker = random.Random(seed + 1)
    requests = [
        ContextRequest(
            user=asker.choice(names), topic=asker.choice(TOPICS), budget_tokens=BUDGET_TOKENS
        )
        for _ in range(queries + min(200, queries))
    ]
    warm, timed = requests[:-queries], requests[-queries:]
    for request in warm:
        memory.context(request)
    latencies = []
    for request in timed:
        begin = time.perf_counter()
        memory.context(request)
        latencies.append((time.perf_counter() - begin) * 1000)
    return Figures(facts, merged, superseded, ingest_s, latencies)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(name: str, figures: Figures, users: int) -> None:
    rate = figures.facts / figures.ingest_s if figures.ingest_s else float("inf")
    print(
        f"{name} ingest: {figures.facts} facts in {figures.ingest_s:.1f} s ({rate:.0f} facts/s; "
        f"{figures.merged} merged, {figures.superseded} superseding)"
    )
    print(
        f"{name} context_for: p50 {percentile(figures.latencies_ms, 0.5):.2f} ms, "
        f"p95 {percentile(figures.latencies_ms, 0.95):.2f} ms over "
        f"{len(figures.latencies_ms)} queries ({figures.facts} facts, {users} users)"
    )


def run_postgres(url: str, run: Callable[[SQLMemory], Figures]) -> Figures | str:
    """Run on a PostgreSQL schema of its own; the figures, or why it was skipped."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = dict(query).get("schema", "jamjet")
    admin = urlunsplit(parts._replace(query=urlencode([kv for kv in query if kv[0] != "schema"])))
    try:
        with psycopg.connect(admin, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
    except psycopg.Error as exc:
        return (
            f"not reachable at {parts.hostname}:{parts.port or 5432}: {' '.join(str(exc).split())}"
        )
    if row and row[0]:
        return f"schema {schema!r} already exists (drop it, or name another with ?schema=)"
    memory = open_memory(url)
    try:
        return run(memory)
    finally:
        memory.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--facts-per-user", type=int, default=100)
    parser.add_argument("--sessions-per-user", type=int, default=5)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default=DEFAULT_PG, help=f"PostgreSQL URL (default {DEFAULT_PG})")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    if min(args.users, args.facts_per_user, args.sessions_per_user, args.queries) < 1:
        parser.error("--users, --facts-per-user, --sessions-per-user and --queries must be >= 1")

    def run(memory: SQLMemory) -> Figures:
        return measure(
            memory,
            args.users,
            args.facts_per_user,
            args.sessions_per_user,
            args.queries,
            args.seed,
        )

    with tempfile.TemporaryDirectory() as tmp:
        memory = open_memory(f"sqlite:///{tmp}/memory.db")
        try:
            report("sqlite", run(memory), args.users)
        finally:
            memory.close()
    if args.no_pg:
        print("postgresql: skipped (--no-pg)")
        return 0
    result = run_postgres(args.pg, run)
    if isinstance(result, str):
        print(f"postgresql: skipped ({result})")
    else:
        report("postgresql", result, args.users)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
