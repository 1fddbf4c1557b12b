"""Engram's store: supersession, merging, bi-temporal queries, retrieval and budgets.

Every test runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from jamjet_temporal.budget._tokens import count_text_tokens
from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, Message
from jamjet_temporal.memory._store import SQLMemory

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def record(
    memory: SQLMemory,
    user: str,
    session: str,
    at: datetime,
    *facts: FactInput,
    org: str | None = None,
    messages: list[Message] | None = None,
) -> None:
    memory.ingest(
        IngestRequest(
            user=user, org=org, session=session, at=at, facts=list(facts), messages=messages or []
        )
    )


def ctx(memory: SQLMemory, user: str, topic: str, budget: int = 400, **kw: object):  # type: ignore[no-untyped-def]
    return memory.context(ContextRequest(user=user, topic=topic, budget_tokens=budget, **kw))


def test_new_value_supersedes_old_and_old_stays_marked(memory: SQLMemory) -> None:
    record(memory, "sunil", "s2", day(2), FactInput(attribute="location", value="Pune"))
    record(memory, "sunil", "s6", day(6), FactInput(attribute="location", value="Amsterdam"))

    current = memory.facts("sunil", attribute="location")
    assert [f.value for f in current] == ["Amsterdam"]
    history = memory.facts("sunil", attribute="location", include_superseded=True)
    assert [f.value for f in history] == ["Pune", "Amsterdam"]
    pune, amsterdam = history
    assert pune.superseded_by == amsterdam.id and amsterdam.supersedes == pune.id
    assert pune.valid_to == amsterdam.valid_from == day(6)
    assert pune.superseded_at is not None and amsterdam.superseded_at is None
    assert not pune.current and amsterdam.current


def test_context_shows_current_value_annotated_never_the_old_one_as_current(
    memory: SQLMemory,
) -> None:
    record(memory, "sunil", "s2", day(2), FactInput(attribute="location", value="Pune"))
    record(memory, "sunil", "s6", day(6), FactInput(attribute="location", value="Amsterdam"))

    for topic in ("where does sunil live, location", "Pune", "Amsterdam"):
        context = ctx(memory, "sunil", topic)
        facts = context.facts
        assert [item.text for item in facts] == ["location: Amsterdam"], topic
        assert facts[0].superseded == ["Pune"]
        assert facts[0].session == "s6"
        assert "location: Amsterdam (superseded Pune, s6)" in str(context)
        assert "▸ location: Amsterdam (superseded Pune)" in context.text
        assert "▸ location: Pune" not in context.text


def test_duplicates_merge_into_one_fact_with_every_session(memory: SQLMemory) -> None:
    record(memory, "sunil", "s1", day(1), FactInput(value="sunil prefers concise answers"))
    record(memory, "sunil", "s3", day(3), FactInput(value="Sunil prefers concise answers."))
    record(memory, "sunil", "s4", day(4), FactInput(attribute="Project", value="JamJet Cloud"))
    record(memory, "sunil", "s5", day(5), FactInput(attribute="project ", value="jamjet cloud"))

    facts = memory.facts("sunil")
    assert len(facts) == 2
    by_value = {f.value: f for f in facts}
    assert by_value["sunil prefers concise answers"].sessions == ["s1", "s3"]
    assert by_value["JamJet Cloud"].sessions == ["s4", "s5"]
    assert by_value["JamJet Cloud"].valid_from == day(4)


def test_ingest_is_idempotent(memory: SQLMemory) -> None:
    request = IngestRequest(
        user="sunil",
        session="s1",
        at=day(1),
        messages=[Message(content="I moved to Pune"), Message(role="assistant", content="Noted")],
        facts=[FactInput(attribute="location", value="Pune", sources=["s1:1"])],
    )
    first = memory.ingest(request)
    again = memory.ingest(request)  # an activity retried after a crash
    assert first.episodes == 2 and again.episodes == 0
    assert len(memory.facts("sunil", include_superseded=True)) == 1
    assert len(memory.episodes("sunil")) == 2
    assert again.facts[0].id == first.facts[0].id


def test_as_of_answers_what_was_believed_then(memory: SQLMemory) -> None:
    record(memory, "sunil", "s2", day(2), FactInput(attribute="location", value="Pune"))
    between = datetime.now(UTC)
    record(memory, "sunil", "s6", day(6), FactInput(attribute="location", value="Amsterdam"))

    assert [f.value for f in memory.facts("sunil", as_of=between)] == ["Pune"]
    assert [f.value for f in memory.facts("sunil")] == ["Amsterdam"]
    then = ctx(memory, "sunil", "location", as_of=between)
    assert [item.text for item in then.facts] == ["location: Pune"]
    assert memory.facts("sunil", as_of=day(-1) - timedelta(days=3650)) == []


def test_valid_at_answers_what_was_true_then(memory: SQLMemory) -> None:
    record(memory, "sunil", "s2", day(2), FactInput(attribute="location", value="Pune"))
    record(memory, "sunil", "s6", day(6), FactInput(attribute="location", value="Amsterdam"))
    assert [f.value for f in memory.facts("sunil", valid_at=day(4))] == ["Pune"]
    assert [f.value for f in memory.facts("sunil", valid_at=day(7))] == ["Amsterdam"]
    assert memory.facts("sunil", valid_at=day(1)) == []


def test_a_late_older_value_does_not_replace_the_newer_one(memory: SQLMemory) -> None:
    record(memory, "sunil", "s6", day(6), FactInput(attribute="location", value="Amsterdam"))
    # Learnt later, but about an earlier time: history, not the current value.
    record(
        memory,
        "sunil",
        "s7",
        day(7),
        FactInput(attribute="location", value="Pune", valid_from=day(2)),
    )
    assert [f.value for f in memory.facts("sunil")] == ["Amsterdam"]
    pune, amsterdam = memory.facts("sunil", include_superseded=True)
    assert pune.value == "Pune" and pune.superseded_by == amsterdam.id
    assert pune.valid_to == day(6) and amsterdam.supersedes == pune.id
    assert ctx(memory, "sunil", "Pune").facts[0].text == "location: Amsterdam"


def test_chain_of_three_values_annotates_newest_first(memory: SQLMemory) -> None:
    for n, city in enumerate(["Pune", "Berlin", "Amsterdam"], start=1):
        record(memory, "sunil", f"s{n}", day(n), FactInput(attribute="location", value=city))
    item = ctx(memory, "sunil", "location").facts[0]
    assert item.text == "location: Amsterdam" and item.superseded == ["Berlin", "Pune"]


def test_relevant_facts_rank_first_and_budget_is_never_exceeded(memory: SQLMemory) -> None:
    facts = [
        FactInput(value=f"sunil collects vintage item number {n} from markets") for n in range(40)
    ]
    facts.append(FactInput(value="sunil shipped the policy violations panel in the release"))
    record(memory, "sunil", "s1", day(1), *facts)
    for budget in (20, 40, 60, 100, 400):
        context = ctx(memory, "sunil", "release notes for the policy panel", budget=budget)
        assert context.tokens_used == count_text_tokens(context.text) <= budget
        if context.items:
            assert "policy violations panel" in context.items[0].text
    assert ctx(memory, "sunil", "release notes policy panel", budget=5).items == []


def test_episodes_are_supporting_excerpts_and_facts_cover_their_sources(memory: SQLMemory) -> None:
    record(
        memory,
        "sunil",
        "s7",
        day(7),
        FactInput(value="sunil shipped the policy violations panel", sources=["s7:1"]),
        messages=[
            Message(content="We shipped the policy violations panel today"),
            Message(content="The release notes draft mentions the new audit export formats"),
        ],
    )
    context = ctx(memory, "sunil", "release notes audit export")
    kinds = {item.kind for item in context.items}
    assert "episode" in kinds
    excerpt = next(i for i in context.items if i.kind == "episode")
    assert excerpt.text == "sunil: The release notes draft mentions the new audit export formats"
    assert excerpt.sources == ["s7:2"]
    facts_only = ctx(memory, "sunil", "release notes audit export", include_episodes=False)
    assert {item.kind for item in facts_only.items} <= {"fact"}


def test_a_turn_already_covered_by_its_fact_is_not_repeated(memory: SQLMemory) -> None:
    record(
        memory,
        "sunil",
        "s7",
        day(7),
        FactInput(value="sunil shipped the policy violations panel", sources=["s7:1"]),
        messages=[Message(content="We shipped the policy violations panel today")],
    )
    context = ctx(memory, "sunil", "policy violations panel")
    assert [item.kind for item in context.items] == ["fact"]
    assert context.covered == {"s7:1"}


def test_profile_facts_fill_the_budget_after_relevant_ones(memory: SQLMemory) -> None:
    record(memory, "sunil", "s1", day(1), FactInput(attribute="timezone", value="CET"))
    record(memory, "sunil", "s2", day(2), FactInput(value="sunil wrote the release notes draft"))
    context = ctx(memory, "sunil", "release notes")
    assert [item.text for item in context.items] == [
        "sunil wrote the release notes draft",
        "timezone: CET",
    ]


def test_recency_breaks_ties_between_equally_relevant_facts(memory: SQLMemory) -> None:
    # The same words in another order: equal for BM25 and for the (order-blind) embedding.
    record(memory, "sunil", "s1", day(1), FactInput(value="release train alpha beta"))
    record(memory, "sunil", "s2", day(2), FactInput(value="release train beta alpha"))
    items = ctx(memory, "sunil", "release train").items
    assert [i.text for i in items] == ["release train beta alpha", "release train alpha beta"]
    flat = ctx(memory, "sunil", "release train", recency_weight=0).items
    assert flat[0].score == flat[1].score


def test_text_groups_by_session_with_dates(memory: SQLMemory) -> None:
    record(memory, "sunil", "s1", day(1), FactInput(value="sunil likes release notes short"))
    record(memory, "sunil", "s2", day(2), FactInput(value="sunil reviews release notes Fridays"))
    text = ctx(memory, "sunil", "release notes").text
    assert text.splitlines() == [
        "[ from earlier sessions ]",
        "s1 (2026-01-06)",
        "▸ sunil likes release notes short",
        "s2 (2026-01-07)",
        "▸ sunil reviews release notes Fridays",
    ]


def test_nothing_remembered_gives_an_empty_context(memory: SQLMemory) -> None:
    context = ctx(memory, "nobody", "anything at all")
    assert context.items == [] and context.text == "" and context.tokens_used == 0
    assert str(context).splitlines()[-1] == "[ token budget: 0 of 400 ]"


@pytest.mark.parametrize(
    "bad",
    [
        {"user": "", "topic": "x", "budget_tokens": 10},
        {"user": "  ", "topic": "x", "budget_tokens": 10},
        {"user": "a\nb", "topic": "x", "budget_tokens": 10},
        {"user": "a", "topic": "x", "budget_tokens": 0},
        {"user": "a", "org": "", "topic": "x", "budget_tokens": 10},
        {"user": "a", "topic": "x", "budget_tokens": 10, "as_of": "2026-01-01T00:00:00"},
    ],
)
def test_invalid_requests_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ContextRequest.model_validate(bad)


def test_blank_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        FactInput(value="   ")
    with pytest.raises(ValidationError):
        FactInput(value="x", attribute=" ")


def test_a_late_value_inside_a_restated_period_does_not_become_current(memory: SQLMemory) -> None:
    record(memory, "sunil", "s1", day(1), FactInput(attribute="manager", value="Tom Becker"))
    record(memory, "sunil", "s2", day(10), FactInput(attribute="manager", value="Tom Becker"))
    record(
        memory,
        "sunil",
        "s3",
        day(12),
        FactInput(attribute="manager", value="Ana Souza", valid_from=day(5)),
    )
    assert [f.value for f in memory.facts("sunil")] == ["Tom Becker"]
    assert ctx(memory, "sunil", "manager").facts[0].text == "manager: Tom Becker"
    assert [f.value for f in memory.facts("sunil", valid_at=day(7))] == ["Ana Souza"]
    assert [f.value for f in memory.facts("sunil", valid_at=day(3))] == ["Tom Becker"]
    assert [f.value for f in memory.facts("sunil", valid_at=day(11))] == ["Tom Becker"]


def test_a_value_returning_at_the_same_time_and_reingesting_never_collide(
    memory: SQLMemory,
) -> None:
    request = IngestRequest(
        user="sunil",
        session="s1",
        at=day(1),
        facts=[FactInput(attribute="location", value=v) for v in ("Pune", "Berlin", "Pune")],
    )
    memory.ingest(request)
    memory.ingest(request)
    assert [f.value for f in memory.facts("sunil")] == ["Pune"]
    record(memory, "sunil", "s2", day(1), FactInput(attribute="location", value="Berlin"))
    record(memory, "sunil", "s9", day(9), FactInput(attribute="location", value="Pune"))
    record(memory, "sunil", "s9", day(9), FactInput(attribute="location", value="Pune"))
    assert [f.value for f in memory.facts("sunil")] == ["Pune"]
