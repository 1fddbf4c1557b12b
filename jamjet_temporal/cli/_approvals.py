"""``jamjet approve``, ``jamjet ui`` and ``jamjet approvals``: deciding, and approvers' keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from jamjet_temporal._shared._wire import DECIDE_SIGNAL
from jamjet_temporal.approvals._client import find_pending, sign, submit, survey_pending
from jamjet_temporal.approvals._identity import generate_identity, load_identity
from jamjet_temporal.cli._client import cli_connect, run_failure, where
from jamjet_temporal.cli._format import age, fail, plain, say
from jamjet_temporal.cli._options import AddressOption
from jamjet_temporal.errors import JamJetError
from jamjet_temporal.plugin._plugin import JamJetPlugin

#: Where to find the runs that wait for a decision, said when a run is not one of them.
LIST_WAITING = "`jamjet approvals list` shows the runs waiting for a decision"


def approvals_list(
    address: AddressOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pending approvals across runs (found through Temporal visibility)."""

    async def show() -> int:
        client = await cli_connect(address, plugins=[JamJetPlugin()])
        listing = await survey_pending(client)
        if json_out:
            requests = [p.model_dump(mode="json") for p in listing.requests]
            print(json.dumps({"requests": requests, "unanswered": listing.unanswered}, indent=2))
            return 0
        if not listing.requests and not listing.unanswered:
            say("no pending approvals")
        for p in listing.requests:
            args = ", ".join(f"{k}={plain(v)}" for k, v in p.args.items())
            say(
                f"{p.run_id} {p.approval_id} {p.action}({args}) · requested by "
                f"{p.requester or '-'} {age(p.requested_at)} ago · needs {p.required} of "
                f"{', '.join(p.eligible)} · approved by {', '.join(p.approved_by) or 'nobody yet'}"
                f" · {p.digest}"
            )
        for run_id in listing.unanswered:
            say(f"{run_id} did not answer (no worker?): its requests cannot be shown")
        return 0

    raise typer.Exit(asyncio.run(show()))


def approvals_keygen(
    approver: Annotated[str, typer.Argument(help="Approver id, e.g. an e-mail address.")],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Key folder (default $JAMJET_KEYS_DIR or ~/.jamjet/keys)."),
    ] = None,
) -> None:
    """Create an approver's signing key (kept outside the repository) and print its public key."""
    try:
        identity, path = generate_identity(approver, directory)
    except JamJetError as err:
        raise fail(str(err)) from None
    say(f"private key: {path} (keep it on the approver's machine)")
    say("add to the approvals config:")
    say(f"  - {{id: {identity.approver}, public_key: {identity.public_key}}}")


def approve(
    run_id: Annotated[str, typer.Argument(help="The waiting run's workflow id.")],
    key: Annotated[Path, typer.Option("--key", help="The approver's private key file.")],
    decision: Annotated[
        str, typer.Option(help="approved or rejected.", case_sensitive=False)
    ] = "approved",
    comment: Annotated[str, typer.Option(help="Comment recorded with the decision.")] = "",
    approval: Annotated[
        str | None, typer.Option("--approval", help="Approval id, when the run has several.")
    ] = None,
    digest: Annotated[
        str | None,
        typer.Option(
            "--digest",
            help="The digest of the request you checked (`jamjet approvals list`): sign only "
            "if the run still asks for exactly that. Required when stdin is not a terminal.",
        ),
    ] = None,
    print_signal: Annotated[
        bool,
        typer.Option(
            "--print-signal",
            help="Print the `temporal workflow signal` command "
            "(for the Temporal CLI or Web UI) instead of sending.",
        ),
    ] = False,
    address: AddressOption = None,
) -> None:
    """Show the request, then sign a decision about exactly it and submit it (update).

    The request is confirmed on the terminal, or by ``--digest``; nothing is signed otherwise.
    """
    if decision not in ("approved", "rejected"):
        raise fail("--decision must be 'approved' or 'rejected'")

    async def go() -> int:
        try:
            identity = load_identity(key)
        except JamJetError as err:
            raise fail(str(err)) from None
        client = await cli_connect(address, plugins=[JamJetPlugin()])
        try:
            request = await find_pending(client, run_id, approval)
        except JamJetError as err:
            raise fail(str(err)) from None
        except RPCError as err:
            raise run_failure(client, run_id, err, LIST_WAITING) from None
        except WorkflowQueryFailedError as err:
            raise fail(
                f"run {run_id} ({where(client)}) cannot list its approval requests ({err}); "
                f"is it a jamjet run? {LIST_WAITING}"
            ) from None
        args = ", ".join(
            f"{k}={json.dumps(plain(v), ensure_ascii=False)}" for k, v in request.args.items()
        )
        print(
            f"To sign as {identity.approver}: {decision}\n"
            f"  action     {request.action}\n"
            f"  arguments  {args or '-'}\n"
            f"  requester  {request.requester or '-'}\n"
            f"  run        {request.run_id} {request.approval_id} "
            f"(Temporal run {request.workflow_run_id})\n"
            f"  digest     {request.digest}",
            file=sys.stderr,
            flush=True,
        )
        if digest is not None:
            if digest != request.digest:
                raise fail(
                    f"the run's request has digest {request.digest}, not the --digest given: it "
                    "is not the request you checked (it changed, or is another one); nothing "
                    "was signed"
                )
        elif not sys.stdin.isatty():
            raise fail(
                "stdin is not a terminal, so nobody confirms the request shown: pass --digest "
                "(from `jamjet approvals list`) to sign only that request; nothing was signed"
            )
        else:
            # Asked on stderr: stdout carries only the result (or --print-signal's command).
            print(
                f"Sign '{decision}' for this request? [y/N] ", end="", file=sys.stderr, flush=True
            )
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise fail("not confirmed; nothing was signed", code=1)
        signed = sign(identity, request, decision, comment)  # type: ignore[arg-type]
        if print_signal:
            payload = signed.model_dump_json()
            print(
                f"temporal workflow signal --workflow-id {run_id} --name {DECIDE_SIGNAL} "
                f"--input '{payload}'"
            )
            return 0
        try:
            result = await submit(client, signed)
        except RPCError as err:
            raise run_failure(client, run_id, err, LIST_WAITING) from None
        mark = "✓" if result.accepted else "✗"
        audit = f"[audit {result.event_id}]"
        say(f"{mark} {request.action} {request.approval_id}: {result.reason} {audit}")
        return 0 if result.accepted else 1

    raise typer.Exit(asyncio.run(go()))


def ui(
    key: Annotated[Path, typer.Option("--key", help="Your approver key file (signs decisions).")],
    port: Annotated[int, typer.Option(help="Port of the page (on 127.0.0.1).")] = 8080,
    address: AddressOption = None,
) -> None:
    """The approvals page for one approver: pending requests, approve or reject with a comment."""
    from jamjet_temporal.approvals._ui import serve_ui

    async def go() -> None:
        try:
            identity = load_identity(key)
        except JamJetError as err:
            raise fail(str(err)) from None
        client = await cli_connect(address, plugins=[JamJetPlugin()])

        def listening(url: str) -> None:
            say(f"▸ Approvals page for {identity.approver}: {url} (Ctrl-C to stop)")
            say("  Open that URL; keep it private: whoever has it decides as you.")

        await serve_ui(client, identity, port=port, on_listening=listening)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())
