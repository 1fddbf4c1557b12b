"""``bench/memory_latency.py`` runs end to end at a tiny size and prints its figures."""

from __future__ import annotations

import random
import re

import pytest

from bench import memory_latency


def test_memory_latency_bench_prints_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--users", "20", "--facts-per-user", "10", "--queries", "20", "--no-pg"]
    assert memory_latency.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"sqlite ingest: 200 facts in \d+\.\d s \(\d+ facts/s; \d+ merged, \d+ superseding\)",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        r"sqlite context_for: p50 \d+\.\d\d ms, p95 \d+\.\d\d ms over 20 queries "
        r"\(200 facts, 20 users\)",
        lines[1],
    ), lines[1]
    assert lines[2:] == ["postgresql: skipped (--no-pg)"]


def test_facts_are_generated_the_same_for_a_seed() -> None:
    def generate(seed: int) -> list[str]:
        requests = memory_latency.sessions_of(random.Random(seed), "ana", 100, 5)
        return [f"{r.session} {f.attribute}={f.value}" for r in requests for f in r.facts]

    facts = generate(3)
    assert facts == generate(3) != generate(4)
    assert len(facts) == 100
    assert any(f.split(" ", 1)[1].startswith("location=") for f in facts)
    assert any("=ana " in f for f in facts)  # free-text statements about the user
