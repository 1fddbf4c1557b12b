"""The ``jamjet`` command line (client side): the command tree and its entry point.

Each command lives in the module of its group (``_run``, ``_dev``, ``_runs``, ``_approvals``,
``_audit``); the options several of them take are declared once in ``_options``.
"""

from __future__ import annotations

import logging
import os
import sys

from jamjet_temporal._shared._extras import missing_extra

try:
    import typer
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("cli", _missing) from _missing

from jamjet_temporal.cli._a2a import a2a_keygen, a2a_serve
from jamjet_temporal.cli._approvals import approvals_keygen, approvals_list, approve, ui
from jamjet_temporal.cli._audit import (
    audit_export,
    audit_init_db,
    audit_key,
    audit_show,
    audit_verify,
    audit_verify_store,
)
from jamjet_temporal.cli._dev import dev
from jamjet_temporal.cli._events import resume
from jamjet_temporal.cli._init import init
from jamjet_temporal.cli._run import run, worker_cmd
from jamjet_temporal.cli._runs import history, status
from jamjet_temporal.cli._validate import validate

app = typer.Typer(
    help="jamjet: crash-proof, governable AI agents on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run)
app.command("validate")(validate)
app.command("init")(init)
app.command("resume")(resume)
app.command("worker")(worker_cmd)
app.command("dev")(dev)
app.command("status")(status)
app.command("history")(history)
app.command("approve")(approve)
app.command("ui")(ui)

audit_app = typer.Typer(help="The audit trail: what the gate decided and every tool call.")
audit_app.command("show")(audit_show)
audit_app.command("verify-store")(audit_verify_store)
audit_app.command("init-db")(audit_init_db)
audit_app.command("export")(audit_export)
audit_app.command("verify")(audit_verify)
audit_app.command("key")(audit_key)
app.add_typer(audit_app, name="audit")

approvals_app = typer.Typer(help="Human approvals: what waits, keys for approvers.")
approvals_app.command("list")(approvals_list)
approvals_app.command("keygen")(approvals_keygen)
app.add_typer(approvals_app, name="approvals")

a2a_app = typer.Typer(help="A2A: serve workflows as agents other agents delegate to.")
a2a_app.command("serve")(a2a_serve)
a2a_app.command("keygen")(a2a_keygen)
app.add_typer(a2a_app, name="a2a")


def _core_logs_to_stderr() -> None:
    """The SDK core's Rust logs go through Python logging (stderr), not straight to stdout.

    Else they land in the middle of `--json` output ("Activity not found on completion",
    "graceful shutdown exceeded"). Commands that follow a run set the level they want.
    """
    from temporalio.runtime import (
        LogForwardingConfig,
        LoggingConfig,
        Runtime,
        TelemetryConfig,
        TelemetryFilter,
    )

    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=logging_config)), error_if_already_set=False
    )


def main() -> None:
    """Entry point of the ``jamjet`` script."""
    _core_logs_to_stderr()
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's Rust threads can abort the interpreter while it finalizes
    # (temporalio/sdk-python#300); everything is flushed and closed, so skip the teardown.
    os._exit(code)
