"""The governed run's tools: a payment booked into a PostgreSQL ledger, keyed by idempotency key.

The ledger is the "downstream system" of the multi-host test, shared by every host (over the
bridge, through the forwarder), in the schema ``$MULTIHOST_LEDGER_SCHEMA``:

* ``attempts``: one row per attempt that began running ``ledger.book`` (even one whose host was
  killed or cut off a moment later): which host, worker and attempt, and whether it applied the
  effect (true), found it applied already (false) or never got that far (null). An attempt
  that applied it still waits for the bank's confirmation before it reports back, so a host lost
  then leaves an applied effect that Temporal never heard of.
* ``ledger``: the effect itself, one row per idempotency key. ``ON CONFLICT DO NOTHING`` is the
  deduplication a real downstream system does: an attempt that applied the effect but whose
  completion never reached Temporal is retried elsewhere, and the retry must not apply it again.
  A key that changed between attempts would show as two rows for one step.

psycopg is imported inside the bodies: this module is imported by the workflow module, which
Temporal's sandbox re-imports for every run.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

from temporalio import activity

from jamjet_temporal import idempotency_key, task

#: Booking: the bank prepares (before the effect), then confirms (after it, before the step
#: reports back): long enough that a kill or a cut lands in either phase.
PREPARE_SECONDS = 0.75
CONFIRM_SECONDS = 0.75

LEDGER_DDL = (
    """CREATE TABLE {schema}.attempts (
        id bigserial PRIMARY KEY,
        key text NOT NULL,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        activity_id text NOT NULL,
        attempt int NOT NULL,
        host text NOT NULL,
        worker text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        effect_at timestamptz,
        applied boolean
    )""",
    """CREATE TABLE {schema}.ledger (
        key text PRIMARY KEY,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        activity_id text NOT NULL,
        amount numeric NOT NULL,
        payee text NOT NULL,
        host text NOT NULL,
        attempt int NOT NULL,
        booked_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
)

LEDGER_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON {schema}.attempts TO {role}",
    "GRANT USAGE ON SEQUENCE {schema}.attempts_id_seq TO {role}",
    "GRANT SELECT, INSERT ON {schema}.ledger TO {role}",
)


def _where() -> tuple[str, str, str]:
    return (
        os.environ["MULTIHOST_LEDGER_DSN"],
        os.environ["MULTIHOST_LEDGER_SCHEMA"],
        os.environ.get("MULTIHOST_HOST", "?"),
    )


@task(name="ledger.book", heartbeat_timeout=timedelta(seconds=4))
async def book(amount: float, payee: str) -> str:
    """Book the payment once per idempotency key; returns the transaction id."""
    import psycopg
    from psycopg import sql

    dsn, schema, host = _where()
    info = activity.info()
    key = idempotency_key()
    table = sql.Identifier(schema, "attempts")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            sql.SQL(
                "INSERT INTO {} (key, workflow_id, run_id, activity_id, attempt, host, worker)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
            ).format(table),
            (
                key,
                info.workflow_id,
                info.workflow_run_id,
                info.activity_id,
                info.attempt,
                host,
                f"{host}/pid{os.getpid()}",
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        await asyncio.sleep(PREPARE_SECONDS)  # the bank is slow
        async with conn.transaction():  # the effect and its attempt's note, together
            applied = await _apply(conn, schema, key, info, amount, payee, host)
            await conn.execute(
                sql.SQL(
                    "UPDATE {} SET applied = %s, effect_at = clock_timestamp() WHERE id = %s"
                ).format(table),
                (applied, row[0]),
            )
        # The effect is applied; a worker lost now never reports it: the retry elsewhere must
        # find it booked rather than book it again.
        await asyncio.sleep(CONFIRM_SECONDS)
    return "txn_" + key[3:15]


async def _apply(
    conn: Any, schema: str, key: str, info: activity.Info, amount: float, payee: str, host: str
) -> bool:
    """Book the payment unless its key is booked already; whether this call booked it."""
    from psycopg import sql

    cur = await conn.execute(
        sql.SQL(
            "INSERT INTO {} (key, workflow_id, run_id, activity_id, amount, payee, host,"
            " attempt) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (key) DO NOTHING RETURNING key"
        ).format(sql.Identifier(schema, "ledger")),
        (
            key,
            info.workflow_id,
            info.workflow_run_id,
            info.activity_id,
            amount,
            payee,
            host,
            info.attempt,
        ),
    )
    return await cur.fetchone() is not None


@task(name="ledger.purge")
async def purge(payee: str) -> None:
    """Delete the payee's bookings: the policy blocks it, so it never runs."""
    raise AssertionError(f"ledger.purge ran for {payee}: the policy should have blocked it")
