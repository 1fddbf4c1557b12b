"""Hybrid retrieval: vectors written with every fact and turn, used by ``context_for``, made for
stores that have none, and stores of the previous schema opened forward (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from jamjet_temporal.errors import ConfigError
from jamjet_temporal.memory import FactInput, Message, _rank
from jamjet_temporal.memory._embed import Vectors, WordLlamaEmbedder
from jamjet_temporal.memory._store import SCHEMA_VERSION, SQLMemory
from jamjet_temporal.memory._text import terms
from tests.engram.test_store import ctx, day, record

MOVED = "I moved to Amsterdam last month"
TOPIC = "where does she live now"


class Blind:
    """An embedder that sees no meaning: every text the same direction, and no sim above 0."""

    name = "test/blind"

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), 256), dtype=np.float32)
        out[:, 0] = -1.0 if texts == [TOPIC] else 1.0
        return out


def count(memory: SQLMemory, sql: str) -> int:
    with memory.transaction(None, write=False) as tx:
        return int(tx.rows(sql)[0]["n"])


def remember_move(memory: SQLMemory) -> None:
    record(
        memory,
        "ana",
        "s1",
        day(1),
        FactInput(value=MOVED),
        FactInput(value="ana plays the cello on weekends"),
        messages=[Message(role="user", content="My cat is called Miso.")],
    )


def test_the_topic_shares_no_word_with_the_fact() -> None:
    assert not set(terms(TOPIC)) & set(terms(MOVED))


def test_every_fact_and_turn_gets_a_vector_when_stored(memory: SQLMemory) -> None:
    remember_move(memory)
    assert count(memory, "SELECT COUNT(*) AS n FROM engram_vectors") == 3
    models = count(
        memory,
        f"SELECT COUNT(*) AS n FROM engram_vectors WHERE model = '{WordLlamaEmbedder.name}'",
    )
    assert models == 3


def test_meaning_finds_what_the_words_miss(open_store: Callable[[], SQLMemory]) -> None:
    memory = open_store()
    remember_move(memory)
    found = [item.text for item in ctx(memory, "ana", TOPIC).items]
    assert found[:1] == [MOVED], found
    # The same store read without meaning finds nothing: the vectors found it.
    blind = open_store()
    blind.embedder = Blind()
    assert [item.text for item in ctx(blind, "ana", TOPIC).items] == []


def test_among_units_the_words_rank_alike_meaning_goes_first(
    memory: SQLMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One word of the topic each, the same length: a tie for BM25 (the older one is stored
    # last, so recency would put it second).
    record(memory, "sunil", "s2", day(2), FactInput(value="bank river flooded"))
    record(memory, "sunil", "s1", day(1), FactInput(value="bank account opened"))
    topic = "bank deposit money"
    assert [i.text for i in ctx(memory, "sunil", topic).items] == [
        "bank account opened",
        "bank river flooded",
    ]
    # Words only: recency decides.
    monkeypatch.setattr(_rank, "SIMILARITY_POWER", 0.0)
    monkeypatch.setattr(_rank, "SETTLED_SIMILARITY_POWER", 0.0)
    assert [i.text for i in ctx(memory, "sunil", topic).items] == [
        "bank river flooded",
        "bank account opened",
    ]


def test_a_store_without_vectors_gets_them_on_first_read(
    open_store: Callable[[], SQLMemory],
) -> None:
    writer = open_store()
    remember_move(writer)
    with writer.transaction(None, write=True) as tx:
        tx.run("DELETE FROM engram_vectors")  # as a store from before vectors holds none
    reader = open_store()
    assert [item.text for item in ctx(reader, "ana", TOPIC).items][:1] == [MOVED]
    assert count(reader, "SELECT COUNT(*) AS n FROM engram_vectors") == 3


def test_a_store_of_the_previous_schema_opens_forward_with_all_its_facts(
    open_store: Callable[[], SQLMemory],
) -> None:
    old = open_store()
    remember_move(old)
    record(old, "ana", "s2", day(2), FactInput(attribute="location", value="Lisbon"))
    # The previous release's schema: no vectors table, no version.
    with old.transaction(None, write=True) as tx:
        tx.run("DROP TABLE engram_vectors")
        tx.run("DROP TABLE engram_meta")
    old.close()
    new = open_store()
    values = sorted(f.value for f in new.facts("ana"))
    assert values == sorted([MOVED, "ana plays the cello on weekends", "Lisbon"])
    assert count(new, "SELECT COUNT(*) AS n FROM engram_meta") == 1
    with new.transaction(None, write=False) as tx:
        version = tx.rows("SELECT value FROM engram_meta WHERE key = 'schema_version'")
    assert int(version[0]["value"]) == SCHEMA_VERSION
    assert [item.text for item in ctx(new, "ana", TOPIC).items][:1] == [MOVED]


def test_a_store_of_a_newer_release_is_refused(open_store: Callable[[], SQLMemory]) -> None:
    newer = open_store()
    remember_move(newer)
    with newer.transaction(None, write=True) as tx:
        tx.run(
            "UPDATE engram_meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    newer.close()
    with pytest.raises(ConfigError, match="newer than this release"):
        open_store().facts("ana")
