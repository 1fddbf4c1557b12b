"""Every error jamjet-temporal raises.

The tree::

    JamJetError                      root; catch this to catch everything of ours
    ├── ConfigError                  bad plugin / task / CLI configuration (raised at construction)
    │   ├── ConfigFileError          a config file is unreadable or invalid (file, line, fix)
    │   │   ├── PolicyError          ... a policy
    │   │   └── ApprovalConfigError  ... an approvals config
    │   ├── BudgetConfigError        a budget value or budget slice is invalid
    │   ├── UnknownModelPriceError   no price is known for a budgeted model (fail closed)
    │   ├── TracingConfigError       tracing cannot be set up (provider not replay-safe, exporter)
    │   ├── KeyFileError             an approver's private key file cannot be used
    │   └── InlineTaskError          a @task whose body runs in the workflow did activity things
    ├── GateError                    the policy gate refused something (recorded in the audit trail)
    │   ├── ToolDeniedError          a tool call was blocked (tool, rule, scope, audit event id)
    │   ├── ModelDeniedError         a model is not in model_allowlist
    │   ├── ApprovalRequiredError    require_approval, but no approvals are configured
    │   ├── ApprovalRejectedError    an approver rejected the action (approver, comment)
    │   ├── ApprovalTimeoutError     nobody decided in time (and any escalation timed out too)
    │   ├── IdentityError            the run's user could not be proven (unsigned, forged, stale)
    │   ├── BudgetExceededError      a model call would cross a budget cap (refused before it)
    │   └── ToolNotClearedError      a tool activity ran without a gate decision (defence in depth)
    ├── PipelineSpecError            a YAML pipeline is malformed (file, line, node, fix)
    ├── PipelineRuntimeError         a pipeline failed while running (node, reason)
    │   ├── TemplateError            a ``{{ state.x }}`` reference could not be resolved
    │   ├── PipelineInputError       the run's input does not match the state schema
    │   ├── EvalFailedError          an eval node failed and halts the run
    │   └── EventTimeoutError        a wait or approval node timed out with no fallback
    ├── DevServerError               the embedded Temporal dev server could not be started
    ├── AuditTamperedError           the audit store lost what its checkpoints signed
    ├── ExportError                  an audit bundle could not be exported or read
    ├── SigningKeyError              the audit signing key file cannot be used
    ├── TrustedKeyError              a trusted audit key (fingerprint, file) is unusable
    ├── EngramError                  long-term memory could not do what was asked
    │   └── ExtractionError          the model's fact extraction was not valid (raw answer kept)
    ├── McpServerError               an MCP server could not be started, reached or understood
    ├── McpToolError                 an MCP tool answered with an error result (isError)
    ├── McpToolDriftError            an MCP tool changed its schema or annotations since listed
    ├── RemoteAgentError             an A2A agent could not be reached, or broke the protocol
    └── DelegationError              an A2A agent's task failed, was refused, or lacks the skill
        └── InputRequiredError       ... the remote task stopped to ask for input

Errors raised inside workflow code are registered by ``JamJetPlugin`` as workflow failure
types: a plain exception there would fail the workflow *task* and retry it forever, ours fail
the workflow with a readable message instead. Each error carries structured fields, not just
a string, and its message says what to do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from jamjet_temporal.audit._checkpoint import CheckpointMark
    from jamjet_temporal.budget._ledger import BudgetDecision

__all__ = [
    "ApprovalConfigError",
    "ApprovalRejectedError",
    "ApprovalRequiredError",
    "ApprovalTimeoutError",
    "AuditTamperedError",
    "BudgetConfigError",
    "BudgetExceededError",
    "ConfigError",
    "ConfigFileError",
    "DelegationError",
    "DevServerError",
    "EngramError",
    "EvalFailedError",
    "EventTimeoutError",
    "ExportError",
    "ExtractionError",
    "GateError",
    "IdentityError",
    "InlineTaskError",
    "InputRequiredError",
    "JamJetError",
    "KeyFileError",
    "McpServerError",
    "McpToolDriftError",
    "McpToolError",
    "ModelDeniedError",
    "PipelineInputError",
    "PipelineRuntimeError",
    "PipelineSpecError",
    "PolicyError",
    "RemoteAgentError",
    "SigningKeyError",
    "TemplateError",
    "ToolDeniedError",
    "ToolNotClearedError",
    "TracingConfigError",
    "TrustedKeyError",
    "UnknownModelPriceError",
]


class JamJetError(Exception):
    """Root of every jamjet-temporal error."""


class ConfigError(JamJetError):
    """A configuration value is invalid; the message names the field and the fix."""


class ConfigFileError(ConfigError):
    """A configuration file (policy, approvals) is unreadable or invalid.

    Attributes:
        file: The file (or ``"<inline>"``).
        line: 1-based line of the offending element, when known.
        reason: What is wrong.
        fix: What to change.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str = "<inline>",
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        self.fix = fix
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {reason}" + (f" (fix: {fix})" if fix else ""))

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_file_error, (type(self), self.reason, self.file, self.line, self.fix))


def _rebuild_file_error(
    cls: type[ConfigFileError], reason: str, file: str, line: int | None, fix: str | None
) -> ConfigFileError:
    return cls(reason, file=file, line=line, fix=fix)


class PolicyError(ConfigFileError):
    """A policy is unreadable or invalid; the worker refuses to start with it."""


class ApprovalConfigError(ConfigFileError):
    """An approvals config is unreadable or invalid; the worker refuses to start with it."""


class GateError(JamJetError):
    """The policy gate refused a call. The refusal is in the audit trail under ``event_id``.

    Attributes:
        subject: The tool or model refused.
        reason: Why (the policy's own words).
        rule: The rule that decided, if one did.
        scope: Which policy scope decided (``run``, ``workflow``, ``agent:<name>``, ...).
        event_id: The audit event recording the refusal.
    """

    def __init__(
        self,
        subject: str,
        reason: str,
        *,
        rule: str | None = None,
        scope: str = "default",
        event_id: str | None = None,
    ) -> None:
        self.subject = subject
        self.reason = reason
        self.rule = rule
        self.scope = scope
        self.event_id = event_id
        audit = f" [audit {event_id}]" if event_id else ""
        super().__init__(f"'{subject}' refused: {reason} (scope {scope}){audit}")

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_gate_error,
            (type(self), self.subject, self.reason, self.rule, self.scope, self.event_id),
        )


def _rebuild_gate_error(
    cls: type[GateError],
    subject: str,
    reason: str,
    rule: str | None,
    scope: str,
    event_id: str | None,
) -> GateError:
    return cls(subject, reason, rule=rule, scope=scope, event_id=event_id)


class ToolDeniedError(GateError):
    """A tool call was blocked by policy before anything executed."""


class ModelDeniedError(GateError):
    """A model call was refused: the model is not in ``model_allowlist``."""


class ApprovalRequiredError(GateError):
    """The policy requires a human approval for this tool, and no approvals are configured."""


class ApprovalRejectedError(GateError):
    """An approver rejected the action; ``reason`` carries who and their comment."""


class ApprovalTimeoutError(GateError):
    """Nobody decided within the timeout (and the escalation, if any, timed out too)."""


class IdentityError(GateError):
    """The run's user (``acting_as``) could not be proven, so the run does not go ahead.

    ``subject`` is the claimed user; ``reason`` says what failed (unknown signer, bad
    signature, a client acting for someone it may not, a claim made for another run).
    """


class ToolNotClearedError(GateError):
    """A tool activity was scheduled without a gate decision (a worker without the plugin?).

    Raised on the activity side, where it reaches the workflow as a non-retryable
    ``ApplicationError`` whose ``type`` is this class's name (an activity fails with a failure
    type, not a Python class): catch ``ActivityError`` and compare ``cause.type``.
    """


class InlineTaskError(ConfigError):
    """A ``@task`` with ``tools=``, ``strategy=``, ``max_cost=`` or ``max_tokens=`` was used as
    an activity, or its body did I/O: such a task's body runs in the workflow (it orchestrates;
    each model and tool call it makes is its own activity), inside Temporal's sandbox.

    Attributes:
        task: The task's name.
    """

    def __init__(self, task: str, problem: str) -> None:
        self.task = task
        super().__init__(problem)

    def __reduce__(self) -> tuple[object, ...]:
        return (InlineTaskError, (self.task, str(self)))


class UnknownModelPriceError(ConfigError):
    """No per-token price is known for a model, so its cost cannot be bounded (fail closed).

    Attributes:
        model: The model id that was looked up.
        provider: The provider the lookup was restricted to, if any.
        reason: Why no price was found.
    """

    def __init__(self, model: str, *, provider: str | None = None, reason: str = "") -> None:
        self.model = model
        self.provider = provider
        self.reason = reason
        where = f" from provider '{provider}'" if provider else ""
        why = f": {reason}" if reason else ""
        super().__init__(
            f"no price known for model '{model}'{where}{why}; the budget cannot bound its "
            f"cost, so the call is refused (fix: add a price override: "
            f"JamJetConfig(budget=BudgetConfig(prices={{'{model}': {{'input_per_mtok': '0.50', "
            f"'output_per_mtok': '1.50'}}}})), prices in USD per million tokens)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unknown_price, (self.model, self.provider, self.reason))


def _rebuild_unknown_price(model: str, provider: str | None, reason: str) -> UnknownModelPriceError:
    return UnknownModelPriceError(model, provider=provider, reason=reason)


class TracingConfigError(ConfigError):
    """Tracing cannot be set up as configured: a tracer provider that is not Temporal's
    replay-safe one, a second global provider, an exporter that is unknown or not installed."""


class BudgetConfigError(ConfigError):
    """A budget value or a budget slice request is invalid; the message names the fix."""


class BudgetExceededError(GateError):
    """A model call was refused before it was made: its projected cost would cross a cap.

    ``subject`` is the model, ``reason`` the decision's own line (for instance
    ``"$0.41 + projected $0.18 > cap $0.50"``), ``rule`` the cap that was crossed
    (``"budget.max_cost"``, ``"budget.max_tokens"`` or both, comma-separated).

    Attributes:
        decision: The refused ``BudgetDecision`` (not carried across a Temporal failure, whose
            message and type are; it survives pickling).
    """

    def __init__(
        self,
        decision: BudgetDecision,
        *,
        scope: str = "default",
        event_id: str | None = None,
    ) -> None:
        self.decision = decision
        super().__init__(
            decision.projected.model,
            f"over budget: {decision.reason}",
            rule=",".join(decision.crossed) or None,
            scope=scope,
            event_id=event_id,
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_exceeded, (self.decision, self.scope, self.event_id))


def _rebuild_exceeded(
    decision: BudgetDecision, scope: str, event_id: str | None
) -> BudgetExceededError:
    return BudgetExceededError(decision, scope=scope, event_id=event_id)


class KeyFileError(ConfigError):
    """A private key file cannot be used (missing, unreadable, not Ed25519, readable by others).

    Attributes:
        path: The key file or directory.
        reason: What is wrong.
        fix: What to do.
    """

    def __init__(self, reason: str, *, path: str, fix: str) -> None:
        self.path = path
        self.reason = reason
        self.fix = fix
        super().__init__(f"{path}: {reason} (fix: {fix})")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_key_file_error, (self.reason, self.path, self.fix))


def _rebuild_key_file_error(reason: str, path: str, fix: str) -> KeyFileError:
    return KeyFileError(reason, path=path, fix=fix)


class ExportError(JamJetError):
    """An audit bundle could not be exported or read; the message says why and what to do."""


class AuditTamperedError(JamJetError):
    """An audit store contradicts a checkpoint the worker's signing key signed before.

    Raised by ``append`` instead of signing a checkpoint: the events are not appended and
    nothing is signed, so the activity fails (and Temporal retries it) rather than a run going
    on with a trail whose rewritten history the key would vouch for.

    Attributes:
        store_id: The store's id.
        signer: Fingerprint of the key whose mark is contradicted.
        mark: The newest ``(seq, head)`` that key signed for the store.
        reason: What the store holds instead.
        marks: The marks file the mark was kept in (None: in memory only).
    """

    def __init__(
        self,
        store_id: str,
        signer: str,
        mark: CheckpointMark,
        reason: str,
        marks: Path | None = None,
    ) -> None:
        self.store_id = store_id
        self.signer = signer
        self.mark = mark
        self.reason = reason
        self.marks = marks
        kept = f" (recorded in {marks})" if marks is not None else ""
        forget = (
            f"remove store {store_id} from {marks} and restart the workers"
            if marks is not None
            else "restart the workers"
        )
        super().__init__(
            f"audit store {store_id} contradicts what its signing key signed: "
            f"{AuditTamperedError.detail(signer, mark, reason)}{kept}. Nothing was appended and no "
            "checkpoint signed: whoever can write the store may have rewritten it. Investigate "
            "before any worker writes to it again (`jamjet audit verify-store`); fix: put back "
            "a copy of the store that still holds that head, or, only if its loss is accepted, "
            f"{forget}"
        )

    @staticmethod
    def detail(signer: str, mark: CheckpointMark, reason: str) -> str:
        """What contradicts a mark: the key, the head and seq it signed, and what is there."""
        return f"key {signer} signed head {mark.head} at seq {mark.seq}, but {reason}"


class SigningKeyError(JamJetError):
    """The audit signing key file is unreadable, not private, or not an Ed25519 private key.

    Attributes:
        path: The key file.
        reason: What is wrong.
        fix: What to do about it.
    """

    def __init__(self, path: Path, reason: str, fix: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.fix = fix or (
            "fix or remove the file (a new key is created on first use), or point "
            "$JAMJET_AUDIT_KEY at another key"
        )
        super().__init__(f"audit signing key {path}: {reason}; {self.fix}")


class TrustedKeyError(JamJetError):
    """A trusted key (a fingerprint, a PEM public key file, a trusted-keys file) is unusable.

    Attributes:
        entry: The fingerprint or file as given (``file:line`` for a line of a file).
        reason: What is wrong.
    """

    def __init__(self, entry: str, reason: str) -> None:
        self.entry = entry
        self.reason = reason
        super().__init__(
            f"trusted key {entry}: {reason}; give a fingerprint as `jamjet audit key` prints "
            "it (sha256: and 64 hex digits), a public key (ed25519:...), a PEM public key "
            "file or a trusted-keys file"
        )


class PipelineSpecError(JamJetError):
    """A YAML pipeline is malformed.

    Attributes:
        file: The pipeline file (or ``"<string>"``).
        line: 1-based line of the offending element, when known.
        node: The node id concerned, when there is one.
        reason: What is wrong.
        fix: What to change.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str = "<string>",
        line: int | None = None,
        node: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.node = node
        self.reason = reason
        self.fix = fix
        where = file if line is None else f"{file}:{line}"
        text = f"{where}: "
        if node is not None:
            text += f"node '{node}': "
        text += reason
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_spec_error, (self.reason, self.file, self.line, self.node, self.fix))


def _rebuild_spec_error(
    reason: str, file: str, line: int | None, node: str | None, fix: str | None
) -> PipelineSpecError:
    return PipelineSpecError(reason, file=file, line=line, node=node, fix=fix)


class PipelineRuntimeError(JamJetError):
    """A pipeline failed while running.

    Attributes:
        node: The node that failed.
        reason: What went wrong.
    """

    def __init__(self, reason: str, *, node: str | None = None) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"node '{node}': {reason}" if node else reason)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_runtime_error, (type(self), self.reason, self.node))


def _rebuild_runtime_error(
    cls: type[PipelineRuntimeError], reason: str, node: str | None
) -> PipelineRuntimeError:
    return cls(reason, node=node)


class TemplateError(PipelineRuntimeError):
    """A ``{{ state.x }}`` reference names a value the pipeline state does not hold."""


class PipelineInputError(PipelineRuntimeError):
    """The run's input does not satisfy the pipeline's ``state_schema`` (refused at start)."""


class EvalFailedError(PipelineRuntimeError):
    """An ``eval`` node's scorers failed and its ``on_fail`` halts (or retries ran out)."""


class EventTimeoutError(PipelineRuntimeError):
    """A ``wait`` or ``human_approval`` node timed out and names no node to go on at."""


class DevServerError(JamJetError):
    """The embedded Temporal dev server could not be started or reached."""


class EngramError(JamJetError):
    """Long-term memory (``engram``) could not do what was asked."""


class ExtractionError(EngramError):
    """The model's answer to a fact extraction was not the JSON asked for.

    Attributes:
        answer: The model's raw answer (for the log; not stored as memory).
    """

    def __init__(self, message: str, *, answer: str | None = None) -> None:
        super().__init__(message)
        self.answer = answer


class McpServerError(JamJetError):
    """An MCP server could not be started or reached, or answered outside the protocol.

    Raised on the worker, where it reaches the workflow as an ``ApplicationError`` whose
    ``type`` is this class's name; the message names the server's alias, the command or URL
    (as configured: ``${VAR}`` references are not filled in) and, for a stdio server, the end of
    its stderr. Retryable when a new connection may help (a server that died, a transport
    error), final when not (a program that does not exist, an invalid request).
    """


class McpToolError(JamJetError):
    """An MCP tool answered with an error result (``isError``): the call ran, and failed.

    Raised on the worker as a non-retryable ``ApplicationError`` of this type (the tool said
    no; asking again would not change its answer): catch ``ActivityError`` and compare
    ``cause.type``.

    Attributes:
        server: The server's alias.
        tool: The tool's name.
        reason: The tool's own error text.
    """

    def __init__(self, server: str, tool: str, reason: str) -> None:
        self.server = server
        self.tool = tool
        self.reason = reason
        super().__init__(f"MCP tool '{server}.{tool}' returned an error: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (McpToolError, (self.server, self.tool, self.reason))


class McpToolDriftError(JamJetError):
    """An MCP tool's definition changed between the run's listing and the call: refused.

    A run lists each server's tools once and decides its calls on that list (the annotations
    feed the policy, approvers approve the tool as listed). Right before a call the worker lists
    the server's tools again; a tool whose input schema or annotations are not what the run
    recorded, that disappeared, or that appeared after the run listed none by its name, is not
    called. Raised on the worker as a non-retryable ``ApplicationError`` of this type, recorded
    in the audit trail as a failed call.

    Attributes:
        server: The server's alias.
        tool: The tool's name.
        reason: What changed.
    """

    def __init__(self, server: str, tool: str, reason: str) -> None:
        self.server = server
        self.tool = tool
        self.reason = reason
        super().__init__(
            f"MCP tool '{server}.{tool}' refused: {reason} since the run listed the server's "
            "tools (tool-definition drift; start a new run to use the tool as it is now)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (McpToolDriftError, (self.server, self.tool, self.reason))


class RemoteAgentError(JamJetError):
    """A remote A2A agent could not be reached, or its card or answers broke the protocol.

    Raised on the worker, where it reaches the workflow as an ``ApplicationError`` of this
    type; the message names the agent (alias or URL) and what failed. Retryable when trying
    again may help (a network error, a timeout, a server error), final when not (no agent card
    at the URL, no interface this worker speaks, the agent lost the task it was running).
    """


class DelegationError(JamJetError):
    """A remote A2A agent's task did not complete: it failed, was rejected or canceled, needs
    authentication, or names a skill the agent's card does not list.

    Raised on the worker as a non-retryable ``ApplicationError`` of this type (sending the
    same request again would not change the answer, and would be a second task): catch
    ``ActivityError`` and compare ``cause.type``; ``cause.details[0]`` holds the fields below.

    Attributes:
        agent: The agent's alias, or its URL.
        skill: The skill asked for (None: the agent chose).
        state: The remote task's final state (``failed``, ``rejected``, ``canceled``,
            ``auth-required``, ``input-required``), or None when no task was sent.
        task_id: The remote task's id, when there is one.
        reason: What the agent said (its status message), or why nothing was sent.
    """

    def __init__(
        self,
        agent: str,
        skill: str | None,
        reason: str,
        *,
        state: str | None = None,
        task_id: str | None = None,
    ) -> None:
        self.agent = agent
        self.skill = skill
        self.reason = reason
        self.state = state
        self.task_id = task_id
        target = f"'{agent}'" if skill is None else f"'{agent}' (skill '{skill}')"
        if state is None:
            message = f"delegation to {target} not sent: {reason}"
        else:
            message = f"delegation to {target} ended {state} (remote task {task_id}): {reason}"
        super().__init__(message)

    def details(self) -> dict[str, str | None]:
        """The fields, as the ``ApplicationError``'s first detail."""
        return {
            "agent": self.agent,
            "skill": self.skill,
            "state": self.state,
            "task_id": self.task_id,
            "reason": self.reason,
        }

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _delegation_error,
            (type(self), self.agent, self.skill, self.reason, self.state, self.task_id),
        )


class InputRequiredError(DelegationError):
    """The remote task stopped in ``input-required``: the agent asks a question.

    Answering it (a second message on the same task) is not supported yet; the remote task is
    left waiting, and its id is in the error's details for whoever answers it.
    """


def _delegation_error(
    cls: type[DelegationError],
    agent: str,
    skill: str | None,
    reason: str,
    state: str | None,
    task_id: str | None,
) -> DelegationError:
    return cls(agent, skill, reason, state=state, task_id=task_id)
