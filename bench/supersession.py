"""Supersession: does Engram give the current value of an attribute, and never an old one?

Seeded users (``bench/_supersession_data.py``) tell Engram over dated sessions about their
location, employer, editor, manager, ...: values change (sometimes back: Pune → Berlin → Pune),
are restated (duplicates, spelt differently), arrive late about an earlier time, next to
free-text facts and conversation turns that mention old values. Everything goes through the
normal ingestion (``ingest``, one request per user per session). Then, for every user and
attribute, a natural question about it is asked of ``context`` (400 tokens) and scored against
the generator's ground truth (the value latest in valid time):

* current recall: the current value is returned as a fact item ``attribute: value``;
* stale-as-current: fact items (or ``▸`` lines of the block) giving an attribute a value it
  no longer has, over every question (must be 0);
* ``facts(user)`` (current facts) equals the ground truth, user by user;
* stored facts equal the distinct (attribute, value, validity period) expected: duplicates merged.

    python bench/supersession.py [--users 200] [--sessions 10] [--seed 7] [--store URL]

The last two lines are ``supersession current recall: X.XXX over Q questions`` and
``supersession stale-as-current: N over Q questions``. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._supersession_data import ATTRIBUTES, UserData, generate, key
from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, Message, open_memory

BUDGET = 400
#: The feature of attributes where a late statement fell between two statements of one value.
SPLIT = "late splits a period"
EXAMPLES = 5
_QUESTIONS = {attr.name: attr.question for attr in ATTRIBUTES}
_POSSESSIVE = {"he": "his", "she": "her"}
# A fact line of the block: "▸ attribute: value" with an optional "(superseded a, b)".
_LINE = re.compile(r"^▸ (?P<attr>[^:]+): (?P<value>.+?)(?: \(superseded (?P<old>.+)\))?$")


@dataclass
class Result:
    """The figures of one run."""

    users: int = 0
    turns: int = 0
    statements: Counter[str] = field(default_factory=Counter)
    questions: int = 0
    recalled: int = 0
    stale: int = 0  # fact items giving an attribute one of its superseded values
    stale_lines: int = 0  # the same, counted on the rendered block's "▸" lines
    stale_questions: int = 0
    wrong: int = 0  # fact items giving an attribute a value it never had
    annotations_wrong: int = 0  # current item whose ``superseded`` is not the history
    missed_by_feature: Counter[str] = field(default_factory=Counter)
    stale_by_feature: Counter[str] = field(default_factory=Counter)  # of the item's attribute
    asked_by_feature: Counter[str] = field(default_factory=Counter)
    users_current_wrong: int = 0
    attributes_wrong: int = 0  # current value or history (periods) not the ground truth
    attributes_wrong_by_feature: Counter[str] = field(default_factory=Counter)
    notes_wrong: int = 0  # users whose free-text facts are not the distinct ones stated
    histories: int = 0
    histories_wrong: int = 0
    stored: int = 0
    expected_stored: int = 0
    merged_reported: int = 0
    ingest_seconds: float = 0.0
    ask_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.recalled / self.questions if self.questions else 0.0

    def outside(self, feature: str) -> tuple[int, int, int, int]:
        """About attributes without ``feature``: questions, misses, stale items, and
        attributes whose current value or history in ``facts`` is not the ground truth."""
        asked = self.questions - self.asked_by_feature[feature]
        missed = self.questions - self.recalled - self.missed_by_feature[feature]
        stale = self.stale - self.stale_by_feature[feature]
        wrong = self.attributes_wrong - self.attributes_wrong_by_feature[feature]
        return asked, missed, stale, wrong

    @property
    def ok(self) -> bool:
        return (
            self.recalled == self.questions
            and self.stale == self.stale_lines == self.wrong == 0
            and self.users_current_wrong == 0
            and self.stored == self.expected_stored
            and self.attributes_wrong == self.notes_wrong == 0
        )


def ingest(memory: Any, data: UserData, result: Result) -> None:
    """Every session of the user through the normal ingestion."""
    for session in data.sessions:
        done = memory.ingest(
            IngestRequest(
                user=data.user,
                session=session.name,
                at=session.at,
                messages=[
                    Message(
                        role="user" if t.role == "user" else "assistant",
                        content=t.content,
                        dia_id=t.dia_id,
                    )
                    for t in session.turns
                ],
                facts=[
                    FactInput(
                        value=s.value,
                        attribute=s.spelt,
                        sources=list(s.sources),
                        valid_from=s.valid_from,
                    )
                    for s in session.statements
                ],
            )
        )
        result.merged_reported += done.merged
        result.turns += len(session.turns)
        result.statements.update(s.kind for s in session.statements)


def _example(result: Result, text: str) -> None:
    if len(result.examples) < EXAMPLES:
        result.examples.append(text)


def _said(data: UserData, name: str) -> str:
    """An attribute's statements in valid-time order, for an example."""
    said = sorted(
        (s for s in data.statements() if s.attribute == name), key=lambda s: (s.at, s.order)
    )
    return "; ".join(
        f"{s.value!r} valid {s.at:%Y-%m-%d %H:%M} "
        f"({s.kind}, {'explicit' if s.valid_from else 'session'} time, statement #{s.order})"
        for s in said
    )


def ask(memory: Any, data: UserData, result: Result) -> None:
    """One question per attribute, scored against the ground truth."""
    truth = data.truth()
    known = {key(name): t for name, t in truth.items()}
    for name, t in truth.items():
        topic = _QUESTIONS[name].format(p=data.pronoun, pp=_POSSESSIVE[data.pronoun])
        start = time.perf_counter()
        context = memory.context(ContextRequest(user=data.user, topic=topic, budget_tokens=BUDGET))
        result.latencies.append(time.perf_counter() - start)
        result.questions += 1
        result.asked_by_feature.update(t.features)
        found = stale = 0
        for item in context.facts:
            attr, sep, value = item.text.partition(": ")
            other = known.get(key(attr)) if sep else None
            if other is None:
                continue  # a free-text fact
            if key(value) == other.current:
                if key(attr) == key(name):
                    found += 1
                    if [key(v) for v in item.superseded] != list(t.earlier):
                        result.annotations_wrong += 1
            elif key(value) in other.superseded:
                stale += 1
                result.stale_by_feature.update(other.features)
                _example(
                    result,
                    f"stale: {data.user} asked {topic!r} got {item.text!r} "
                    f"(current {other.display!r}); statements: {_said(data, attr)}",
                )
            else:
                result.wrong += 1
        for line in context.text.splitlines():
            match = _LINE.match(line)
            if match is None or key(match["attr"]) not in known:
                continue
            if key(match["value"]) in known[key(match["attr"])].superseded:
                result.stale_lines += 1
        result.stale += stale
        result.stale_questions += stale > 0
        if found:
            result.recalled += 1
        else:
            result.missed_by_feature.update(t.features)
            _example(
                result,
                f"missed: {data.user} asked {topic!r}, current {t.display!r}, "
                f"got {[i.text for i in context.facts]}; statements: {_said(data, name)}",
            )


def check_facts(memory: Any, data: UserData, result: Result) -> None:
    """``facts(user)`` against the ground truth; stored history against expected periods."""
    truth = data.truth()
    expected = sorted(
        [(key(name), t.current) for name, t in truth.items()]
        + [("", note) for note in data.notes()]
    )
    current = memory.facts(data.user)
    got = sorted((key(f.attribute or ""), key(f.value)) for f in current)
    if got != expected:
        result.users_current_wrong += 1
        _example(
            result,
            f"facts({data.user!r}): expected-only {sorted(set(expected) - set(got))}"
            f", store-only {sorted(set(got) - set(expected))}",
        )
    everything = memory.facts(data.user, include_superseded=True)
    result.stored += len(everything)
    result.expected_stored += sum(len(t.periods) for t in truth.values()) + len(data.notes())
    for name, t in truth.items():
        result.histories += 1
        periods = tuple(
            (key(f.value), f.valid_from)
            for f in everything
            if f.attribute and key(f.attribute) == key(name)
        )
        now = [key(f.value) for f in current if f.attribute and key(f.attribute) == key(name)]
        if periods != t.periods:
            result.histories_wrong += 1
        if periods != t.periods or now != [t.current]:
            result.attributes_wrong_by_feature.update(t.features)
            result.attributes_wrong += 1
    notes = sorted(key(f.value) for f in everything if f.attribute is None)
    if notes != sorted(data.notes()):
        result.notes_wrong += 1


def run(users: int, sessions: int, seed: int, store: str | None) -> Result:
    """Generate, ingest, ask and check; a temporary SQLite file when ``store`` is None."""
    dataset = generate(users, sessions, seed)
    result = Result(users=users)
    with tempfile.TemporaryDirectory() as tmp:
        memory = open_memory(store or f"sqlite:///{tmp}/memory.db")
        try:
            if store:  # a shared store: start from nothing for these users
                for data in dataset:
                    memory.forget(data.user)
            start = time.perf_counter()
            for data in dataset:
                ingest(memory, data, result)
            result.ingest_seconds = time.perf_counter() - start
            start = time.perf_counter()
            for data in dataset:
                ask(memory, data, result)
                check_facts(memory, data, result)
            result.ask_seconds = time.perf_counter() - start
            if store:
                for data in dataset:
                    memory.forget(data.user)
        finally:
            memory.close()
    return result


def report(result: Result, sessions: int, seed: int, store: str | None) -> None:
    n_statements = sum(result.statements.values())
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(result.statements.items()))
    print(
        f"supersession: {result.users} users x {sessions} sessions, seed {seed}, "
        f"store {store or 'SQLite (temporary file)'}"
    )
    print(
        f"ingested {result.turns} turns and {n_statements} facts ({kinds}) "
        f"in {result.ingest_seconds:.1f} s"
    )
    print(
        f"stored facts: {result.stored}, expected {result.expected_stored} distinct "
        f"(attribute, value, period) and notes; merged {n_statements - result.stored} "
        f"duplicates (ingest reported {result.merged_reported} merged)"
    )
    print(
        f"histories (valid-time periods) as expected: "
        f"{result.histories - result.histories_wrong} of {result.histories} attributes; "
        f"free-text facts as expected: {result.users - result.notes_wrong} of {result.users} users"
    )
    print(
        f"facts(user) equals the ground truth: {result.users - result.users_current_wrong} "
        f"of {result.users} users"
    )
    print(
        f"superseded annotation of the current item as expected: "
        f"{result.recalled - result.annotations_wrong} of {result.recalled}"
    )
    print(
        f"values never stated returned: {result.wrong}; stale '▸' lines in the block: "
        f"{result.stale_lines}; questions with a stale item: {result.stale_questions}"
    )
    lat = sorted(result.latencies)
    if lat:
        print(
            f"context latency: p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
            f"p95 {lat[int(len(lat) * 0.95)] * 1000:.1f} ms "
            f"({result.questions} questions and checks in {result.ask_seconds:.1f} s)"
        )
    print("by what the attribute went through (one attribute may count in several rows):")
    for feature, asked in sorted(result.asked_by_feature.items()):
        missed = result.missed_by_feature[feature]
        print(
            f"  {feature:<32} {asked:>5} questions, recall {(asked - missed) / asked:.3f}, "
            f"stale items {result.stale_by_feature[feature]}"
        )
    asked, missed, stale, wrong = result.outside(SPLIT)
    if asked:
        print(
            f"  no late statement splitting a period: {asked} questions, "
            f"recall {(asked - missed) / asked:.3f}, stale items {stale}, "
            f"current value or history wrong in facts() {wrong}"
        )
    for example in result.examples:
        print(f"  e.g. {example}")
    print(f"supersession current recall: {result.recall:.3f} over {result.questions} questions")
    print(f"supersession stale-as-current: {result.stale} over {result.questions} questions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200, help="users (default 200)")
    parser.add_argument("--sessions", type=int, default=10, help="sessions per user (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--store", help="memory store URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.sessions < 1:
        parser.error("--users and --sessions must be at least 1")
    result = run(args.users, args.sessions, args.seed, args.store)
    report(result, args.sessions, args.seed, args.store)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
