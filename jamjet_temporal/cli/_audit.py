"""``jamjet audit``: a run's trail, the store's chain and checkpoints, evidence bundles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer

from jamjet_temporal._shared._connect import connect_config
from jamjet_temporal.audit import PostgresAuditStore, open_store, read_bundle, verify_bundle
from jamjet_temporal.audit import export as export_audit
from jamjet_temporal.audit._export import CATEGORIES
from jamjet_temporal.audit._keys import (
    checkpoint_marks_path,
    default_key_path,
    fingerprint,
    load_or_create_signing_key,
    load_trusted_keys,
    public_key_pem,
)
from jamjet_temporal.cli._client import no_server
from jamjet_temporal.cli._format import chain_line, checkpoint_lines, describe_event, fail, say
from jamjet_temporal.cli._options import AddressOption, AuditStoreOption
from jamjet_temporal.cli._runtime import runtime
from jamjet_temporal.errors import JamJetError
from jamjet_temporal.plugin._config import DEFAULT_AUDIT_STORE

SigningKeyOption = Annotated[Path | None, typer.Option("--key", help="Signing key file.")]
CheckpointKeyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-key",
        help="A key trusted to sign the store's checkpoints: fingerprint (sha256:...) or PEM "
        "public key file. Repeatable. Default: the local signing key ($JAMJET_AUDIT_KEY or "
        "~/.jamjet/audit-signing.key).",
    ),
]
CheckpointKeysOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--trusted-keys",
        help="File of keys trusted to sign the store's checkpoints (as for `audit verify`). "
        "Repeatable.",
    ),
]


def _checkpoint_trust(keys: list[str] | None, files: list[Path] | None) -> dict[str, str]:
    """Whose checkpoints count, and why.

    The keys pinned (flags, else $JAMJET_TRUSTED_KEYS); without any, the local signing key,
    the one this host's workers sign with (read if it exists, never created here).
    """
    trusted = load_trusted_keys(keys=keys or (), files=files or ())
    if trusted:
        return trusted
    path = default_key_path()
    if not path.exists():
        return {}
    return {fingerprint(load_or_create_signing_key(path)): f"the local signing key {path}"}


def audit_show(
    run_id: Annotated[str, typer.Argument(help="Workflow id of the run.")],
    audit_store: AuditStoreOption = DEFAULT_AUDIT_STORE,
    trusted_key: CheckpointKeyOption = None,
    trusted_keys: CheckpointKeysOption = None,
) -> None:
    """Print a run's audit trail, oldest first, and verify the store's chain and checkpoints.

    The hash chain is recomputed and every signed checkpoint of it checked: a rewrite of
    events under a checkpoint is named. The run is covered when a checkpoint signed by a
    trusted key is at or after its last event (each run's run.closed event brings one).

    Exit code: 0 verified and covered; 1 no events for the run; 2 the store or a trusted key
    cannot be used; 3 the chain is broken or contradicts a checkpoint (rewritten); 4 intact,
    but some of the run's events are not under a trusted checkpoint, or a checkpoint's
    signer is not trusted.
    """

    async def show() -> int:
        try:
            trusted = _checkpoint_trust(trusted_key, trusted_keys)
            store = open_store(audit_store)
            try:
                events = await store.events(run_id)
                verdict = await store.verify(trusted_keys=trusted, marks=checkpoint_marks_path())
            finally:
                await store.close()
        except JamJetError as err:
            raise fail(str(err)) from None
        if not events:
            raise fail(f"no audit events for run {run_id} in {audit_store}", code=1)
        for stored in events:
            event = stored.event
            when = event.at.strftime("%H:%M:%S.%f")[:-3]
            say(f"{event.id} {when} {event.kind:<22} {describe_event(event)}")
        say(f"{len(events)} events · hash chain {chain_line(verdict)}")
        for line in checkpoint_lines(verdict, trusted):
            say(line)
        if not verdict.ok:
            return 3
        last = events[-1].seq
        if last > verdict.covered:
            say(
                f"NOT COVERED: this run's events after seq {verdict.covered} (up to seq {last}) "
                "are not under a trusted signed checkpoint (a run still going gets one with "
                "its run.closed event)"
            )
            return 4
        if not all(verdict.signers.values()):
            say("NOT TRUSTED: a checkpoint's signer is not trusted (see above)")
            return 4
        say(f"this run's events are covered by signed checkpoints (up to seq {last})")
        return 0

    raise typer.Exit(asyncio.run(show()))


def audit_verify_store(
    audit_store: AuditStoreOption = DEFAULT_AUDIT_STORE,
    trusted_key: CheckpointKeyOption = None,
    trusted_keys: CheckpointKeysOption = None,
) -> None:
    """Verify a whole audit store: recompute its hash chain and check every signed checkpoint.

    Exit code: 0 intact and every event under a checkpoint signed by a trusted key; 2 the
    store or a trusted key cannot be used; 3 the chain is broken or contradicts a checkpoint
    (rewritten); 4 intact, but events after the last trusted checkpoint are not covered (a
    live store's newest events until the next checkpoint; every event, if the checkpoints
    were removed), or a checkpoint's signer is not trusted.
    """

    async def check() -> int:
        try:
            trusted = _checkpoint_trust(trusted_key, trusted_keys)
            store = open_store(audit_store)
            try:
                verdict = await store.verify(trusted_keys=trusted, marks=checkpoint_marks_path())
            finally:
                await store.close()
        except JamJetError as err:
            raise fail(str(err)) from None
        say(f"hash chain {chain_line(verdict)}")
        if verdict.ok:
            say(f"chain head: seq {verdict.count} {verdict.head}")
        for line in checkpoint_lines(verdict, trusted):
            say(line)
        if not verdict.ok:
            return 3
        return 0 if verdict.covered_all else 4

    raise typer.Exit(asyncio.run(check()))


def audit_init_db(
    dsn: Annotated[
        str,
        typer.Option(
            "--dsn", help="The admin's connection string or postgresql:// URL (owns the schema)."
        ),
    ],
    worker_role: Annotated[
        str, typer.Option("--worker-role", help="The existing role workers connect as.")
    ],
    schema: Annotated[str, typer.Option("--schema", help="Schema of the tables.")] = "jamjet",
) -> None:
    """Set up a PostgreSQL audit store once, as an admin; workers then may only append.

    Creates the schema, its tables, the trigger function and the append-only triggers,
    owned by the admin role of --dsn (taking over a schema an older version let the worker
    own), and grants the worker role only USAGE on the schema and SELECT, INSERT on the
    tables. Running it again changes nothing. Exit code: 0 done; 2 refused (the message says
    why).
    """
    try:
        store_id = asyncio.run(
            PostgresAuditStore.init_db(dsn, schema=schema, worker_role=worker_role)
        )
    except JamJetError as err:
        raise fail(str(err)) from None
    say(
        f"▸ Schema {schema} ready (store id {store_id}): audit_events, audit_checkpoints, "
        "audit_store_id, their append-only triggers and trigger function, owned by the admin"
    )
    say(
        f"▸ Role {worker_role}: USAGE on {schema}; SELECT, INSERT on audit_events and "
        "audit_checkpoints; SELECT on audit_store_id; nothing else"
    )
    say(f"▸ Workers: --audit-store 'postgresql://{worker_role}@HOST/DB?schema={schema}'")


def audit_export(
    run_id: Annotated[str, typer.Argument(help="Workflow id of the run.")],
    format: Annotated[str, typer.Option("--format", help="json or pdf.")] = "json",
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="NAME.json, or NAME.pdf with --format pdf (NAME.json beside it); "
            "NAME.intoto.jsonl is written beside the JSON.",
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="events, tools, policy, approvals, budget."),
    ] = None,
    redact: Annotated[list[str] | None, typer.Option("--redact", help="Field to mask.")] = None,
    key: SigningKeyOption = None,
    audit_store: AuditStoreOption = DEFAULT_AUDIT_STORE,
    address: AddressOption = None,
) -> None:
    """Build the run's signed evidence bundle (JSON, and a PDF report with --format pdf).

    Beside the JSON bundle goes NAME.intoto.jsonl: its statement as an
    in-toto attestation (a DSSE envelope) signed by the same key.
    """
    if format not in ("json", "pdf"):
        raise fail("--format must be json or pdf")
    kind: Literal["json", "pdf"] = "pdf" if format == "pdf" else "json"
    namespace = connect_config(address).get("namespace") or "default"

    async def go() -> int:
        # The run's Temporal history makes the bundle's completeness checkable: reached as
        # `status` reaches it (a local server started for the command when none answers).
        async with runtime(address, model=False, web_ui=False, required=False) as env:
            say(f"▸ Building evidence package for {run_id}...")
            try:
                result = await export_audit(
                    run_id,
                    format=kind,
                    include=include or CATEGORIES,
                    store=audit_store,
                    output=output,
                    redact=redact or (),
                    key=key,
                    address=env.address,
                )
            except JamJetError as err:
                raise fail(str(err), code=1) from None
        summary = result.bundle["summary"]
        policy = summary["policy"]
        say(f"▸ Events: {summary['events']} (signed, immutable)")
        say(f"▸ Tool calls: {summary['tool_calls']} (args, results, latency)")
        say(
            f"▸ Policy: {policy['evaluated']} ({policy['allowed']} allowed, "
            f"{policy['blocked']} blocked, {policy['evaluated']} evaluated)"
        )
        decided = [a for a in summary["approvals"] if a["kind"] == "approval.decision"]
        who = ", ".join(f"{a['approver']}, {str(a['time'])[11:16]}" for a in decided)
        say(f"▸ Approvals: {len(decided)}" + (f" ({who})" if who else ""))
        if not result.history_included:
            why = (
                f"not in namespace {namespace} at {env.address} (past retention, or another "
                "server or namespace?)"
                if env.up
                else no_server(env.address)
            )
            say(
                f"▸ Temporal history: not included ({why}); the bundle has the audit trail, "
                "its completeness cannot be checked"
            )
        signer = result.bundle["statement"]["public_key_fingerprint"]
        say(f"▸ Signing key: {signer} (verifiers pin it with --trusted-key)")
        say(f"▸ Attestation: {result.attestation_path} (in-toto, DSSE)")
        size = result.path.stat().st_size
        shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} KB"
        say(f"▸ Output: {result.path} · {shown}")
        return 0

    raise typer.Exit(asyncio.run(go()))


def audit_verify(
    bundle: Annotated[Path, typer.Argument(help="The JSON bundle.")],
    trusted_key: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-key",
            help="A trusted signer: fingerprint (sha256:...) or PEM public key file. Repeatable.",
        ),
    ] = None,
    trusted_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-keys",
            help="File of trusted signers: one fingerprint or PEM public key per entry, "
            "# comments. Repeatable.",
        ),
    ] = None,
) -> None:
    """Verify a bundle offline: integrity, signer trust and completeness.

    The signer is trusted only when pinned: by --trusted-key, --trusted-keys
    or, when neither is given, JAMJET_TRUSTED_KEYS (comma-separated
    fingerprints and trusted-keys files).

    Exit code: 0 ok; otherwise the sum of 1 (integrity failed),
    2 (completeness failed) and 4 (signer not trusted);
    8 when the bundle or a trusted key cannot be read.
    """
    try:
        trusted = load_trusted_keys(keys=trusted_key or (), files=trusted_keys or ())
        verdict = verify_bundle(read_bundle(bundle), trusted_keys=trusted)
    except JamJetError as err:
        raise fail(str(err), code=8) from None
    integrity = "ok" if verdict.integrity_ok else "FAILED"
    completeness = {True: "ok", False: "FAILED", None: "not checked (no history)"}[
        verdict.completeness_ok
    ]
    say(f"integrity: {integrity}")
    if not verdict.attested:
        say("attestation: none (a bundle exported before in-toto attestations)")
    signer = verdict.signer or "unknown (no readable public key)"
    if verdict.trusted:
        say(f"signer: {signer} (trusted: {trusted[verdict.signer]})")
    elif trusted:
        say(
            f"signer: {signer} NOT TRUSTED: not one of the {len(trusted)} trusted key(s) configured"
        )
    else:
        say(
            f"signer: {signer} NOT TRUSTED: no trusted key configured (pin the signer you "
            "expect with --trusted-key, a trusted-keys file or JAMJET_TRUSTED_KEYS)"
        )
    say(f"completeness: {completeness}")
    for problem in [*verdict.integrity_problems, *verdict.completeness_problems]:
        say(f"  ✗ {problem}")
    raise typer.Exit(verdict.exit_code)


def audit_key(
    key: SigningKeyOption = None,
) -> None:
    """Print the bundle signing key's fingerprint and public key (created on first use).

    Publish the fingerprint to whoever verifies your bundles: they pin it with
    `jamjet audit verify --trusted-key FINGERPRINT` (or a trusted-keys file).
    """
    try:
        private = load_or_create_signing_key(key)
    except JamJetError as err:
        raise fail(str(err)) from None
    say(f"fingerprint: {fingerprint(private.public_key())}")
    print(public_key_pem(private), end="")
