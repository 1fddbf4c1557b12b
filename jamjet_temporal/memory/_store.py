"""The memory store: one logic over SQL, two backends (activity side: all I/O is here).

``SQLMemory`` holds everything that decides what memory means (supersession, merging,
forgetting, retrieval); a backend supplies the connection, the term index and the placeholders.
Calls are synchronous; ``MemoryStore`` runs them on one thread of its own for async callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np

from jamjet_temporal.errors import ConfigError
from jamjet_temporal.memory._embed import Embedder, Vectors, default_embedder
from jamjet_temporal.memory._rank import (
    FEEDBACK_TERMS,
    Candidate,
    Corpus,
    bm25,
    expand_query,
    feedback_terms,
    fuse,
    pack,
    propagate,
    settle,
)
from jamjet_temporal.memory._text import normalize, scope_key, terms
from jamjet_temporal.memory._types import (
    Context,
    ContextItem,
    ContextRequest,
    Episode,
    Fact,
    FactInput,
    Forgotten,
    Ingested,
    IngestRequest,
)

__all__ = ["IndexHit", "MemoryStore", "Row", "SQLMemory", "Tx", "index_hits"]

_T = TypeVar("_T")

#: Current attribute facts added after the relevant ones when budget is left ("profile").
PROFILE_LIMIT = 50

_FACT_COLUMNS = (
    "id, user_id, org, attribute, value, session, sessions, sources, valid_from, valid_to, "
    "recorded_at, superseded_at, supersedes, superseded_by, attr_key, value_key, n_terms, stated"
)
_EPISODE_COLUMNS = "id, user_id, org, session, dia_id, speaker, text, occurred_at, recorded_at"

# Portable DDL (TEXT times in ISO 8601 UTC with microseconds sort as times do).
TABLES = [
    """CREATE TABLE IF NOT EXISTS engram_sessions (
        scope TEXT NOT NULL, user_id TEXT NOT NULL, org TEXT, session TEXT NOT NULL,
        started_at TEXT NOT NULL, PRIMARY KEY (scope, session))""",
    """CREATE TABLE IF NOT EXISTS engram_episodes (
        id TEXT PRIMARY KEY, scope TEXT NOT NULL, user_id TEXT NOT NULL, org TEXT,
        session TEXT NOT NULL, dia_id TEXT NOT NULL, speaker TEXT NOT NULL, text TEXT NOT NULL,
        occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, n_terms INTEGER NOT NULL,
        UNIQUE (scope, dia_id))""",
    """CREATE TABLE IF NOT EXISTS engram_facts (
        id TEXT PRIMARY KEY, scope TEXT NOT NULL, user_id TEXT NOT NULL, org TEXT,
        attribute TEXT, attr_key TEXT, value TEXT NOT NULL, value_key TEXT NOT NULL,
        session TEXT NOT NULL, sessions TEXT NOT NULL, sources TEXT NOT NULL,
        valid_from TEXT NOT NULL, valid_to TEXT, recorded_at TEXT NOT NULL,
        superseded_at TEXT, supersedes TEXT, superseded_by TEXT, n_terms INTEGER NOT NULL,
        stated TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS engram_facts_attr ON engram_facts (scope, attr_key)",
    "CREATE INDEX IF NOT EXISTS engram_facts_value ON engram_facts (scope, value_key)",
]


#: The schema this release writes. 1: facts, turns, sessions and the term index; 2: vectors
#: (``engram_vectors``) and this version (``engram_meta``). A store opens forward (the missing
#: tables are created, its units get vectors as they are read); a newer one is refused.
SCHEMA_VERSION = 2
META_TABLE = "CREATE TABLE IF NOT EXISTS engram_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def check_schema_version(found: str | None, where: str) -> bool:
    """Whether a store whose ``engram_meta`` holds ``found`` (None: no version, the first
    schema) is behind this release.

    Raises:
        ConfigError: The store was written by a newer release.
    """
    version = 1 if found is None else int(found)
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"memory store {where} has schema version {version}, newer than this release's "
            f"{SCHEMA_VERSION} (fix: upgrade jamjet-temporal on this worker)"
        )
    return version < SCHEMA_VERSION


def stamp_schema(tx: Tx, where: str) -> None:
    """Record ``SCHEMA_VERSION`` in a store (after its DDL ran), refusing a newer store.

    Raises:
        ConfigError: The store was written by a newer release.
    """
    rows = tx.rows("SELECT value FROM engram_meta WHERE key = 'schema_version'")
    if check_schema_version(rows[0]["value"] if rows else None, where) or not rows:
        tx.run(
            "INSERT INTO engram_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )


# Units of a scope without a vector of a model, with what their text is made of.
_MISSING_VECTORS = (
    "SELECT 'fact' AS kind, id AS unit, attribute, value, NULL AS text FROM engram_facts f "
    "WHERE scope = ? AND "
    "NOT EXISTS (SELECT 1 FROM engram_vectors v WHERE v.scope = f.scope AND v.model = ? "
    "AND v.unit = f.id) UNION ALL "
    "SELECT 'episode' AS kind, id AS unit, NULL AS attribute, NULL AS value, text "
    "FROM engram_episodes e WHERE scope = ? AND "
    "NOT EXISTS (SELECT 1 FROM engram_vectors v WHERE v.scope = e.scope AND v.model = ? "
    "AND v.unit = e.id)"
)
_EMBED_BATCH = 256
#: How many of a scope's nearest units (by vector) join the lexical candidates.
VECTOR_CANDIDATES = 50
#: Below this cosine a unit is no nearer the topic than unrelated text is (WordLlama's
#: unrelated sentences score about -0.1 to 0.1; "I moved to Amsterdam" against "where does she
#: live now" 0.22). Without it a small memory's every unit is among the nearest.
MIN_SIMILARITY = 0.2
_EMPTY: Vectors = np.zeros((0, 0), dtype=np.float32)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _id(prefix: str, *parts: str | None) -> str:
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


def _fact_text(row: Row) -> str:
    """The text a fact is indexed and embedded by."""
    return f"{row['attribute']}: {row['value']}" if row["attribute"] else str(row["value"])


def _unit_text(row: Row, kind: str | None = None) -> str:
    """The text a unit (fact or turn; ``kind`` from the row's own column if not given) is
    indexed and embedded by."""
    return str(row["text"]) if (kind or row["kind"]) == "episode" else _fact_text(row)


def _merge(old: Sequence[str], new: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*old, *new]))


class Row(Protocol):
    """A result row, read by column name: ``sqlite3.Row`` or a psycopg ``dict_row``."""

    def __getitem__(self, key: str, /) -> Any: ...


class IndexHit(NamedTuple):
    """A unit of the term index holding a query term."""

    kind: str
    unit: str
    #: The unit's analysed terms, space-separated (as ``index_add`` stored them).
    terms: str


def index_hits(rows: Sequence[Row]) -> list[IndexHit]:
    """The hits of rows with ``kind``, ``unit`` and ``terms`` columns (every backend's)."""
    return [IndexHit(row["kind"], row["unit"], row["terms"]) for row in rows]


def _believed(row: Row, at: str) -> bool:
    """Whether a fact row was current as believed at ``at`` (ISO, transaction time): recorded
    by then and not yet known to be replaced."""
    return bool(
        row["recorded_at"] <= at and (row["superseded_at"] is None or row["superseded_at"] > at)
    )


def _fact(row: Row) -> Fact:
    """The fact a row of ``_FACT_COLUMNS`` holds (the one mapping, for every backend)."""
    return Fact(
        id=row["id"],
        user=row["user_id"],
        org=row["org"],
        attribute=row["attribute"],
        value=row["value"],
        session=row["session"],
        sessions=json.loads(row["sessions"]),
        sources=json.loads(row["sources"]),
        valid_from=datetime.fromisoformat(row["valid_from"]),
        valid_to=_time(row["valid_to"]),
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        superseded_at=_time(row["superseded_at"]),
        supersedes=row["supersedes"],
        superseded_by=row["superseded_by"],
    )


def _episode(row: Row) -> Episode:
    """The turn a row of ``_EPISODE_COLUMNS`` holds (the one mapping, for every backend)."""
    return Episode(
        id=row["id"],
        user=row["user_id"],
        org=row["org"],
        session=row["session"],
        dia_id=row["dia_id"],
        speaker=row["speaker"],
        text=row["text"],
        occurred_at=datetime.fromisoformat(row["occurred_at"]),
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
    )


class Tx(ABC):
    """One open transaction of a backend."""

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        """Run a query (``?`` placeholders) and return its rows, read by column name."""

    @abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement (``?`` placeholders); return the rows it changed."""


class SQLMemory(ABC):
    """Engram's memory over a SQL database. Subclasses: ``SQLiteMemory``, ``PostgresMemory``.

    Every fact and turn also gets a vector (``engram_vectors``, one per unit and embedding
    model) from ``embedder`` when it is stored; units stored without one (by an older release,
    or before the model changed) get theirs the first time their user's memory is read here.
    """

    def __init__(self) -> None:
        #: Turns texts into vectors; None: the process's default (WordLlama, offline).
        self.embedder: Embedder | None = None
        #: Per scope and model: the newest vector ``seq`` loaded, the units, each unit's row by
        #: unit id, and the matrix of their vectors (one row each).
        self._vector_cache: dict[
            tuple[str, str], tuple[int, list[tuple[str, str]], dict[str, int], Vectors]
        ] = {}
        #: Scopes whose every unit has a vector of the model (this process saw to it).
        self._vectors_complete: set[tuple[str, str]] = set()
        #: The units the running ingest has indexed (their vectors are stored before it
        #: commits); set only inside an ingest's write transaction, which holds the lock.
        self._fresh_units: list[tuple[str, str, str]] | None = None

    # -- backend hooks -------------------------------------------------------------------

    @abstractmethod
    def transaction(self, scope: str | None, *, write: bool) -> Any:
        """A context manager yielding a ``Tx``; writes to one scope are serialised."""

    @abstractmethod
    def index_add(self, tx: Tx, scope: str, kind: str, unit: str, unit_terms: list[str]) -> None:
        """Add a unit's terms to the term index."""

    @abstractmethod
    def index_search(self, tx: Tx, scope: str, query: Sequence[str]) -> list[IndexHit]:
        """Every unit of ``scope`` holding any of ``query``'s terms (see ``index_hits``)."""

    @abstractmethod
    def index_forget(self, tx: Tx, scope: str) -> None:
        """Delete the scope's entries from the term index."""

    @abstractmethod
    def purge(self) -> None:
        """After a forget: make deleted data unrecoverable where the backend can."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    # -- writing -------------------------------------------------------------------------

    def ingest(self, request: IngestRequest, now: datetime | None = None) -> Ingested:
        """Store a session's turns and facts in one transaction. Idempotent."""
        now = now or datetime.now(UTC)
        scope = scope_key(request.user, request.org)
        stored: list[Fact] = []
        merged = superseded = episodes = 0
        fresh: list[tuple[str, str, str]] = []
        with self.transaction(scope, write=True) as tx, self._collecting(fresh):
            self._session(tx, scope, request, request.at)
            for n, message in enumerate(request.messages, start=1):
                dia = message.dia_id or f"{request.session}:{n}"
                speaker = message.speaker or (
                    request.user if message.role == "user" else "assistant"
                )
                text = f"{speaker}: {message.content}"
                unit = _id("e", scope, dia)
                unit_terms = terms(text)
                changed = tx.run(
                    "INSERT INTO engram_episodes (id, scope, user_id, org, session, dia_id, "
                    "speaker, text, occurred_at, recorded_at, n_terms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        unit,
                        scope,
                        request.user,
                        request.org,
                        request.session,
                        dia,
                        speaker,
                        text,
                        _iso(message.at or request.at),
                        _iso(now),
                        len(unit_terms),
                    ),
                )
                if changed:
                    self.index_add(tx, scope, "episode", unit, unit_terms)
                    fresh.append(("episode", unit, text))
                    episodes += 1
            for n, fact in enumerate(request.facts):
                # Facts of one ingest are recorded in order: a microsecond apart, so a value
                # restated at the same valid time is ordered the same way on every backend.
                at = now + timedelta(microseconds=n)
                result, outcome = self._add_fact(tx, scope, request, fact, at)
                stored.append(result)
                merged += outcome == "merged"
                superseded += outcome == "superseded"
            # The new units' vectors, in the same transaction.
            self._store_vectors(tx, scope, fresh)
        return Ingested(episodes=episodes, facts=stored, merged=merged, superseded=superseded)

    def _session(self, tx: Tx, scope: str, request: IngestRequest, at: datetime) -> None:
        rows = tx.rows(
            "SELECT started_at FROM engram_sessions WHERE scope = ? AND session = ?",
            (scope, request.session),
        )
        if not rows:
            tx.run(
                "INSERT INTO engram_sessions (scope, user_id, org, session, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (scope, request.user, request.org, request.session, _iso(at)),
            )
        elif rows[0]["started_at"] > _iso(at):
            tx.run(
                "UPDATE engram_sessions SET started_at = ? WHERE scope = ? AND session = ?",
                (_iso(at), scope, request.session),
            )

    def _add_fact(
        self, tx: Tx, scope: str, request: IngestRequest, fact: FactInput, now: datetime
    ) -> tuple[Fact, str]:
        attr_key = normalize(fact.attribute) if fact.attribute else None
        value_key = normalize(fact.value)
        valid_from = _iso(fact.valid_from or request.at)
        if attr_key is None:
            chain = tx.rows(
                f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE scope = ? "
                "AND attr_key IS NULL AND value_key = ?",
                (scope, value_key),
            )
            if chain:
                return self._confirm(tx, chain[0], request, fact, None), "merged"
            return self._insert(tx, scope, request, fact, valid_from, None, None, now), "new"
        chain = tx.rows(
            f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE scope = ? AND attr_key = ? "
            "ORDER BY valid_from, recorded_at",
            (scope, attr_key),
        )
        before = [row for row in chain if row["valid_from"] <= valid_from]
        after = [row for row in chain if row["valid_from"] > valid_from]
        prev = before[-1] if before else None
        nxt = after[0] if after else None
        if prev is not None and prev["value_key"] != value_key:
            restated = sorted(t for t in json.loads(prev["stated"]) if t > valid_from)
            if restated:
                return self._split(tx, scope, request, fact, valid_from, prev, nxt, restated, now)
        if prev is not None and prev["value_key"] == value_key:
            return self._confirm(tx, prev, request, fact, None), "merged"
        if nxt is not None and nxt["value_key"] == value_key:
            # Stated earlier than we knew: the value held from this earlier time.
            if prev is not None:
                tx.run(
                    "UPDATE engram_facts SET valid_to = ? WHERE id = ?", (valid_from, prev["id"])
                )
            return self._confirm(tx, nxt, request, fact, valid_from), "merged"
        new = self._insert(tx, scope, request, fact, valid_from, prev, nxt, now)
        if prev is not None:
            tx.run(
                "UPDATE engram_facts SET valid_to = ?, superseded_by = ?, "
                "superseded_at = COALESCE(superseded_at, ?) WHERE id = ?",
                (valid_from, new.id, _iso(now), prev["id"]),
            )
        if nxt is not None:
            tx.run("UPDATE engram_facts SET supersedes = ? WHERE id = ?", (new.id, nxt["id"]))
        return new, "superseded" if prev is not None else "new"

    def _split(
        self,
        tx: Tx,
        scope: str,
        request: IngestRequest,
        fact: FactInput,
        valid_from: str,
        prev: Row,
        nxt: Row | None,
        restated: list[str],
        now: datetime,
    ) -> tuple[Fact, str]:
        """A value learnt late lands inside a period whose value was stated again after it:
        the period splits into [old value, new value, old value again from its restatement]."""
        new = self._insert(tx, scope, request, fact, valid_from, prev, None, now)
        again = _id("f", scope, prev["attr_key"], prev["value_key"], restated[0], new.id)
        tx.run(
            "INSERT INTO engram_facts (id, scope, user_id, org, attribute, attr_key, value, "
            "value_key, session, sessions, sources, valid_from, valid_to, recorded_at, "
            "superseded_at, supersedes, superseded_by, n_terms, stated) "
            "SELECT ?, scope, user_id, org, attribute, attr_key, value, value_key, session, "
            "sessions, sources, ?, valid_to, ?, superseded_at, ?, superseded_by, n_terms, ? "
            "FROM engram_facts WHERE id = ?",
            (again, restated[0], _iso(now), new.id, json.dumps(restated), prev["id"]),
        )
        text = _fact_text(prev)
        self.index_add(tx, scope, "fact", again, terms(text))
        self._fresh().append(("fact", again, text))
        tx.run(
            "UPDATE engram_facts SET valid_to = ?, superseded_by = ?, superseded_at = ? "
            "WHERE id = ?",
            (restated[0], again, _iso(now), new.id),
        )
        earlier = [t for t in json.loads(prev["stated"]) if t <= valid_from]
        tx.run(
            "UPDATE engram_facts SET valid_to = ?, superseded_by = ?, "
            "superseded_at = COALESCE(superseded_at, ?), stated = ? WHERE id = ?",
            (valid_from, new.id, _iso(now), json.dumps(earlier), prev["id"]),
        )
        if nxt is not None:
            tx.run("UPDATE engram_facts SET supersedes = ? WHERE id = ?", (again, nxt["id"]))
        rows = tx.rows(f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE id = ?", (new.id,))
        return _fact(rows[0]), "superseded"

    def _confirm(
        self,
        tx: Tx,
        row: Row,
        request: IngestRequest,
        fact: FactInput,
        valid_from: str | None,
    ) -> Fact:
        sessions = _merge(json.loads(row["sessions"]), [request.session])
        sources = _merge(json.loads(row["sources"]), fact.sources)
        stated = sorted({*json.loads(row["stated"]), _iso(fact.valid_from or request.at)})
        tx.run(
            "UPDATE engram_facts SET sessions = ?, sources = ?, "
            "valid_from = COALESCE(?, valid_from), stated = ? WHERE id = ?",
            (json.dumps(sessions), json.dumps(sources), valid_from, json.dumps(stated), row["id"]),
        )
        rows = tx.rows(f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE id = ?", (row["id"],))
        return _fact(rows[0])

    def _insert(
        self,
        tx: Tx,
        scope: str,
        request: IngestRequest,
        fact: FactInput,
        valid_from: str,
        prev: Row | None,
        nxt: Row | None,
        now: datetime,
    ) -> Fact:
        attr_key = normalize(fact.attribute) if fact.attribute else None
        value_key = normalize(fact.value)
        # Unique even when a value returns at the same time or a merged fact's start moved.
        unit = _id("f", scope, attr_key, value_key, valid_from, uuid.uuid4().hex)
        text = f"{fact.attribute}: {fact.value}" if fact.attribute else fact.value
        unit_terms = terms(text)
        tx.run(
            "INSERT INTO engram_facts (id, scope, user_id, org, attribute, attr_key, value, "
            "value_key, session, sessions, sources, valid_from, valid_to, recorded_at, "
            "superseded_at, supersedes, superseded_by, n_terms, stated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                unit,
                scope,
                request.user,
                request.org,
                fact.attribute,
                attr_key,
                fact.value,
                value_key,
                request.session,
                json.dumps([request.session]),
                json.dumps(list(dict.fromkeys(fact.sources))),
                valid_from,
                nxt["valid_from"] if nxt is not None else None,
                _iso(now),
                _iso(now) if nxt is not None else None,
                prev["id"] if prev is not None else None,
                nxt["id"] if nxt is not None else None,
                len(unit_terms),
                json.dumps([valid_from]),
            ),
        )
        self.index_add(tx, scope, "fact", unit, unit_terms)
        self._fresh().append(("fact", unit, text))
        rows = tx.rows(f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE id = ?", (unit,))
        return _fact(rows[0])

    # -- reading -------------------------------------------------------------------------

    def facts(
        self,
        user: str,
        org: str | None = None,
        *,
        attribute: str | None = None,
        include_superseded: bool = False,
        as_of: datetime | None = None,
        valid_at: datetime | None = None,
    ) -> list[Fact]:
        """A user's facts, oldest first.

        Args:
            user: Whose.
            org: The user's org, if any.
            attribute: Only this attribute's values.
            include_superseded: Also values that were replaced (the whole history).
            as_of: What was believed at this time (transaction time): facts recorded by then
                and not yet known to be replaced.
            valid_at: What was true at this time, as far as we know now (valid time).
        """
        scope = scope_key(user, org)
        sql = f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE scope = ?"
        params: list[Any] = [scope]
        if attribute is not None:
            sql += " AND attr_key = ?"
            params.append(normalize(attribute))
        sql += " ORDER BY valid_from, recorded_at, id"
        with self.transaction(scope, write=False) as tx:
            rows = [r for r in tx.rows(sql, params) if r["user_id"] == user and r["org"] == org]
        if as_of is not None:
            rows = [r for r in rows if _believed(r, _iso(as_of))]
        elif valid_at is not None:
            at = _iso(valid_at)
            rows = [
                r
                for r in rows
                if r["valid_from"] <= at and (r["valid_to"] is None or r["valid_to"] > at)
            ]
        elif not include_superseded:
            rows = [r for r in rows if r["superseded_by"] is None]
        return [_fact(row) for row in rows]

    def episodes(self, user: str, org: str | None = None) -> list[Episode]:
        """A user's stored conversation turns, in time order."""
        scope = scope_key(user, org)
        with self.transaction(scope, write=False) as tx:
            rows = tx.rows(
                f"SELECT {_EPISODE_COLUMNS} FROM engram_episodes WHERE scope = ? "
                "ORDER BY occurred_at, dia_id",
                (scope,),
            )
        return [e for e in map(_episode, rows) if e.user == user and e.org == org]

    def context(self, request: ContextRequest, now: datetime | None = None) -> Context:
        """The most relevant current memory for a topic, packed under a token budget."""
        as_of = request.as_of or now or datetime.now(UTC)
        scope = scope_key(request.user, request.org)
        embedder = self._embedder()
        if (scope, embedder.name) not in self._vectors_complete:
            self.backfill(scope)
        query = embedder.embed([request.topic])[0]
        with self.transaction(scope, write=False) as tx:
            times = {
                row["session"]: datetime.fromisoformat(row["started_at"])
                for row in tx.rows(
                    "SELECT session, started_at FROM engram_sessions WHERE scope = ?", (scope,)
                )
            }
            corpus = self._corpus(tx, scope)
            loader = _Loader(self, tx, scope, request, as_of)
            weights = dict.fromkeys(terms(request.topic), 1.0)
            cands = loader.search(weights)
            scores = bm25(weights, cands, corpus)
            if scores:
                # One more search with the feedback terms' candidates too: exact frequencies
                # for choosing the expansion and for scoring the expanded query.
                extra = feedback_terms(scores, cands, 3 * FEEDBACK_TERMS)
                cands = loader.search({**dict.fromkeys(extra, 0.0), **weights})
                weights = expand_query(weights, scores, cands, corpus, set(extra))
                scores = bm25(weights, cands, corpus)
            similarity, nearest = self._nearest(
                tx, scope, embedder.name, query, request.include_episodes, scores.keys()
            )
            cands += loader.units([unit for unit in nearest if unit[1] not in scores])
            scores = fuse(scores, similarity, [unit for _, unit in nearest])
            scores, support = propagate(scores, cands)
            scores = settle(scores, similarity)
            ranked = loader.resolve(cands, scores, times, support)
            ranked += loader.profile(ranked)
        chosen, text, tokens = pack(ranked, request.budget_tokens, times)
        items = [
            ContextItem(
                kind="fact" if c.kind == "fact" else "episode",
                id=c.id,
                text=c.display,
                session=c.session,
                at=c.at,
                score=round(c.score, 6),
                tokens=c.tokens,
                sources=c.sources or ([c.id] if c.kind == "fact" else []),
                superseded=c.superseded,
                excerpt=c.excerpt,
            )
            for c in chosen
        ]
        return Context(
            user=request.user,
            org=request.org,
            topic=request.topic,
            items=items,
            text=text,
            tokens_used=tokens,
            budget_tokens=request.budget_tokens,
            sessions={s: times[s] for s in dict.fromkeys(c.session for c in chosen) if s in times},
        )

    def _corpus(self, tx: Tx, scope: str) -> Corpus:
        count = length = 0
        for table in ("engram_facts", "engram_episodes"):
            row = tx.rows(
                f"SELECT COUNT(*) AS units, SUM(n_terms) AS length FROM {table} WHERE scope = ?",
                (scope,),
            )[0]
            count += int(row["units"] or 0)
            length += int(row["length"] or 0)
        return Corpus(count=count, mean_length=length / count if count else 0.0)

    # -- forgetting ----------------------------------------------------------------------

    def forget(self, user: str, org: str | None = None) -> Forgotten:
        """Delete everything remembered about a user: facts, turns, sessions, index entries."""
        scope = scope_key(user, org)
        with self.transaction(scope, write=True) as tx:
            fact_ids = [
                r["id"] for r in tx.rows("SELECT id FROM engram_facts WHERE scope = ?", (scope,))
            ]
            names = [
                r["session"]
                for r in tx.rows("SELECT session FROM engram_sessions WHERE scope = ?", (scope,))
            ]
            self.index_forget(tx, scope)
            tx.run("DELETE FROM engram_vectors WHERE scope = ?", (scope,))
            facts = tx.run("DELETE FROM engram_facts WHERE scope = ?", (scope,))
            episodes = tx.run("DELETE FROM engram_episodes WHERE scope = ?", (scope,))
            sessions = tx.run("DELETE FROM engram_sessions WHERE scope = ?", (scope,))
        for key in [key for key in self._vector_cache if key[0] == scope]:
            del self._vector_cache[key]
        self._vectors_complete = {key for key in self._vectors_complete if key[0] != scope}
        self.purge()
        return Forgotten(
            facts=facts,
            episodes=episodes,
            sessions=sessions,
            fact_ids=sorted(fact_ids),
            session_names=sorted(names),
        )

    # -- vectors -------------------------------------------------------------------------

    def _embedder(self) -> Embedder:
        return self.embedder or default_embedder()

    @contextlib.contextmanager
    def _collecting(self, fresh: list[tuple[str, str, str]]) -> Iterator[None]:
        """Within a write transaction (which holds the store's lock): units indexed go here."""
        self._fresh_units = fresh
        try:
            yield
        finally:
            self._fresh_units = None

    def _fresh(self) -> list[tuple[str, str, str]]:
        """The units the running ingest has indexed: ``(kind, unit, text)``."""
        fresh = self._fresh_units
        if fresh is None:
            raise RuntimeError("a unit was indexed outside an ingest")
        return fresh

    def _store_vectors(self, tx: Tx, scope: str, units: Sequence[tuple[str, str, str]]) -> int:
        """Embed ``(kind, unit, text)`` units and store their vectors (how many were new)."""
        embedder = self._embedder()
        added = 0
        for start in range(0, len(units), _EMBED_BATCH):
            batch = units[start : start + _EMBED_BATCH]
            vectors = embedder.embed([text for _, _, text in batch])
            for (kind, unit, _), vector in zip(batch, vectors, strict=True):
                added += tx.run(
                    "INSERT INTO engram_vectors (scope, kind, unit, model, vec) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (scope, kind, unit, embedder.name, vector.astype(np.float16).tobytes()),
                )
        return added

    def backfill(self, user_scope: str) -> int:
        """Give every unit of a scope that has none a vector of the current model.

        Returns:
            How many vectors were added.
        """
        embedder = self._embedder()
        with self.transaction(user_scope, write=True) as tx:
            missing = tx.rows(_MISSING_VECTORS, (user_scope, embedder.name) * 2)
            added = self._store_vectors(
                tx, user_scope, [(row["kind"], row["unit"], _unit_text(row)) for row in missing]
            )
        self._vectors_complete.add((user_scope, embedder.name))
        return added

    def _nearest(
        self,
        tx: Tx,
        scope: str,
        model: str,
        query: Vectors,
        episodes: bool,
        wanted: Collection[str],
    ) -> tuple[dict[str, float], list[tuple[str, str]]]:
        """The cosine similarity to ``query`` of the ``wanted`` units that have a vector (by
        unit id), and the nearest units (``(kind, unit)``, best first, at least
        ``MIN_SIMILARITY``)."""
        top, units, row_of, matrix = self._vector_cache.get((scope, model), (0, [], {}, _EMPTY))
        rows = tx.rows(
            "SELECT seq, kind, unit, vec FROM engram_vectors WHERE scope = ? AND model = ? "
            "AND seq > ? ORDER BY seq",
            (scope, model, top),
        )
        if rows:
            packed = np.frombuffer(b"".join(bytes(r["vec"]) for r in rows), dtype=np.float16)
            fresh: Vectors = packed.reshape(len(rows), -1).astype(np.float32)
            row_of = {**row_of, **{str(r["unit"]): len(units) + i for i, r in enumerate(rows)}}
            units = [*units, *((str(r["kind"]), str(r["unit"])) for r in rows)]
            matrix = fresh if not len(matrix) else np.vstack([matrix, fresh])
            top = int(rows[-1]["seq"])
            self._vector_cache[(scope, model)] = (top, units, row_of, matrix)
        if not units or matrix.shape[1] != query.shape[0]:
            return {}, []
        sims = matrix @ query
        similarity = {unit: float(sims[row_of[unit]]) for unit in wanted if unit in row_of}
        if not episodes:
            sims = np.where([kind == "fact" for kind, _ in units], sims, -np.inf)
        count = min(VECTOR_CANDIDATES, len(units))
        best = np.argpartition(-sims, count - 1)[:count]
        best = best[np.argsort(-sims[best])]
        nearest = [units[i] for i in best if sims[i] >= MIN_SIMILARITY]
        similarity.update((unit, float(sims[row_of[unit]])) for _, unit in nearest)
        return similarity, nearest


class _Loader:
    """Turns index hits into ranked candidates, within one read transaction."""

    def __init__(
        self, memory: SQLMemory, tx: Tx, scope: str, request: ContextRequest, as_of: datetime
    ) -> None:
        self._memory = memory
        self._tx = tx
        self._scope = scope
        self._request = request
        self._as_of = _iso(as_of)
        self._facts: dict[str, Row] = {}
        self._episodes: dict[str, Row] = {}
        self._seen: dict[str, Candidate] = {}
        self._chains: dict[str, list[Row]] = {}

    def _visible(self, row: Row) -> bool:
        return bool(row["user_id"] == self._request.user and row["org"] == self._request.org)

    def search(self, weights: dict[str, float]) -> list[Candidate]:
        hits = self._memory.index_search(self._tx, self._scope, sorted(weights))
        if not self._request.include_episodes:
            hits = [hit for hit in hits if hit.kind == "fact"]
        self._load([(hit.kind, hit.unit) for hit in hits])
        return self._candidates(hits)

    def units(self, wanted: Sequence[tuple[str, str]]) -> list[Candidate]:
        """Candidates for units found by vector, not by term (their terms from their text)."""
        self._load(wanted)
        hits: list[IndexHit] = []
        for kind, unit in wanted:
            row = (self._facts if kind == "fact" else self._episodes).get(unit)
            if row is not None:
                hits.append(IndexHit(kind, unit, " ".join(terms(_unit_text(row, kind)))))
        return self._candidates(hits)

    def _load(self, wanted: Sequence[tuple[str, str]]) -> None:
        """Read the rows of the ``(kind, unit)``s not read yet."""
        for table, kind, columns, store in (
            ("engram_facts", "fact", _FACT_COLUMNS, self._facts),
            ("engram_episodes", "episode", _EPISODE_COLUMNS, self._episodes),
        ):
            ids = list(dict.fromkeys(u for k, u in wanted if k == kind and u not in store))
            for chunk in _chunks(ids):
                for row in self._tx.rows(
                    f"SELECT {columns} FROM {table} WHERE scope = ? AND id IN "
                    f"({', '.join('?' * len(chunk))})",
                    (self._scope, *chunk),
                ):
                    store[row["id"]] = row

    def _candidates(self, hits: Sequence[IndexHit]) -> list[Candidate]:
        out: list[Candidate] = []
        for hit in hits:
            cand = self._seen.get(hit.unit)
            if cand is None:
                cand = self._hit(hit)
                if cand is None:
                    continue
                self._seen[hit.unit] = cand
            out.append(cand)
        return out

    def _hit(self, hit: IndexHit) -> Candidate | None:
        kind, unit = hit.kind, hit.unit
        found = Counter(hit.terms.split())
        length = sum(found.values())
        if kind == "fact" and unit in self._facts:
            row = self._facts[unit]
            if not self._visible(row) or row["recorded_at"] > self._as_of:
                return None
            sources = json.loads(row["sources"])
            return Candidate(
                kind="fact",
                id=unit,
                terms=found,
                length=length,
                session=row["session"],
                at=datetime.fromisoformat(row["valid_from"]),
                sources=sources,
                links=sources,
            )
        if kind == "episode" and unit in self._episodes:
            row = self._episodes[unit]
            if not self._visible(row) or row["recorded_at"] > self._as_of:
                return None
            return Candidate(
                kind="episode",
                id=unit,
                terms=found,
                length=length,
                session=row["session"],
                at=datetime.fromisoformat(row["occurred_at"]),
                sources=[row["dia_id"]],
                links=[row["dia_id"]],
            )
        return None

    def _believed(self, row: Row) -> bool:
        return _believed(row, self._as_of)

    def resolve(
        self,
        cands: list[Candidate],
        scores: dict[str, float],
        times: dict[str, datetime],
        support: dict[str, str],
    ) -> list[Candidate]:
        """Ranked current units; a superseded fact's score goes to the value now believed."""
        best: dict[str, float] = {}
        for cand in cands:
            score = scores.get(cand.id, 0.0)
            if score <= 0:
                continue
            if cand.kind == "fact":
                row = self._facts[cand.id]
                if not self._believed(row):
                    current = self._current_of(row)
                    if current is None:
                        continue
                    unit = current["id"]
                else:
                    unit = cand.id
            else:
                unit = cand.id
            best[unit] = max(best.get(unit, 0.0), score)
        # The block cannot hold more lines than this (a line costs at least 2 tokens); the
        # rest need not be built.
        keep = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[
            : self._request.budget_tokens // 2
        ]
        best = dict(keep)
        order = sorted(times.values())
        rank = {at: i for i, at in enumerate(order)}
        span = max(len(order) - 1, 1)
        ranked: list[Candidate] = []
        for unit, score in best.items():
            cand = self._candidate(unit, times)
            turn = self._episodes.get(support.get(unit, ""))
            if turn is not None and self._visible(turn):
                cand.support = turn["text"]
            position = rank.get(times.get(cand.session, cand.at), len(order) - 1) / span
            cand.score = score * (1 + self._request.recency_weight * position)
            ranked.append(cand)
        ranked.sort(key=lambda c: (-c.score, c.id))
        return ranked

    def profile(self, ranked: list[Candidate]) -> list[Candidate]:
        """Current attribute facts not already ranked (the user's profile), newest first."""
        have = {cand.id for cand in ranked}
        rows = self._tx.rows(
            f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE scope = ? "
            "AND attr_key IS NOT NULL AND recorded_at <= ? "
            "AND (superseded_at IS NULL OR superseded_at > ?) "
            "ORDER BY valid_from DESC, id LIMIT ?",
            (self._scope, self._as_of, self._as_of, PROFILE_LIMIT),
        )
        out: list[Candidate] = []
        for row in rows:
            if row["id"] in have or not self._visible(row):
                continue
            self._facts[row["id"]] = row
            cand = self._candidate(row["id"], {})
            out.append(cand)
        return out

    def _current_of(self, row: Row) -> Row | None:
        chain = self._chain(row["attr_key"])
        believed = [r for r in chain if self._believed(r)]
        return believed[-1] if believed else None

    def _chain(self, attr_key: str) -> list[Row]:
        """An attribute's values in valid-time order (read once per context)."""
        chain = self._chains.get(attr_key)
        if chain is None:
            rows = self._tx.rows(
                f"SELECT {_FACT_COLUMNS} FROM engram_facts WHERE scope = ? AND attr_key = ? "
                "ORDER BY valid_from, recorded_at",
                (self._scope, attr_key),
            )
            for row in rows:
                self._facts.setdefault(row["id"], row)
            chain = self._chains[attr_key] = [r for r in rows if self._visible(r)]
        return chain

    def _candidate(self, unit: str, times: dict[str, datetime]) -> Candidate:
        if unit in self._facts:
            row = self._facts[unit]
            statement = f"{row['attribute']}: {row['value']}" if row["attribute"] else row["value"]
            earlier: list[str] = []
            if row["attribute"]:
                for other in reversed(self._chain(row["attr_key"])):
                    if (
                        other["valid_from"] < row["valid_from"]
                        and other["recorded_at"] <= self._as_of
                        and other["value"] not in earlier
                    ):
                        earlier.append(other["value"])
            sources = json.loads(row["sources"])
            return Candidate(
                kind="fact",
                id=unit,
                terms=Counter(),
                length=0,
                session=row["session"],
                at=datetime.fromisoformat(row["valid_from"]),
                display=statement,
                sources=sources,
                superseded=earlier,
            )
        row = self._episodes[unit]
        return Candidate(
            kind="episode",
            id=unit,
            terms=Counter(),
            length=0,
            session=row["session"],
            at=datetime.fromisoformat(row["occurred_at"]),
            display=row["text"],
            sources=[row["dia_id"]],
        )


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MemoryStore:
    """Async access to a ``SQLMemory``: every call runs on one thread of the store's own."""

    def __init__(self, memory: SQLMemory) -> None:
        self.memory = memory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engram")

    async def call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run ``fn(*args, **kwargs)`` on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def close(self) -> None:
        """Close the connection and the thread."""
        await self.call(self.memory.close)
        self._pool.shutdown(wait=False)
