"""The supersession benchmark (``bench/supersession.py``) on a small generated population.

Real checks of the store on generated data: every attribute's current value (the latest
statement in valid time, computed by the generator) comes back as a current fact, no value an
attribute no longer has is shown as current, ``facts(user)`` is the ground truth, and duplicates
merge into one fact per (attribute, value, validity period). On SQLite and PostgreSQL (see
conftest).
"""

from __future__ import annotations

import pytest

from bench import supersession

ARGS = ["--users", "20", "--sessions", "6", "--seed", "7"]


def _figures(out: str) -> tuple[float, int, int]:
    *_, recall_line, stale_line = out.strip().splitlines()
    recall, _, questions = recall_line.removeprefix("supersession current recall: ").split()[:3]
    stale, _, asked = stale_line.removeprefix("supersession stale-as-current: ").split()[:3]
    assert questions == asked
    return float(recall), int(stale), int(questions)


def test_current_values_are_recalled_and_no_stale_value_is_current(
    memory_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = supersession.main([*ARGS, "--store", memory_url])
    recall, stale, questions = _figures(capsys.readouterr().out)
    assert questions > 100
    assert recall == 1.0
    assert stale == 0
    assert status == 0  # also: facts(user) is the ground truth, duplicates merged


def test_no_failure_outside_late_statements_that_split_a_period(memory_url: str) -> None:
    result = supersession.run(20, 6, 7, memory_url)
    asked, missed, stale, wrong = result.outside(supersession.SPLIT)
    assert asked > 100
    assert missed == 0
    assert stale == 0
    assert wrong == 0  # current value and valid-time history in facts()
    assert result.wrong == 0 and result.notes_wrong == 0
    # Every kind of statement is exercised.
    assert {"new", "change", "return", "restate", "late", "note"} <= set(result.statements)
    assert result.stored < sum(result.statements.values())  # duplicates merged
