"""``JamJetPlugin``: the one object a team adds to its Temporal client or worker.

Wiring only: the pydantic data converter, our workflows, built-in activities, failure types
and sandbox passthroughs. Every piece is per instance, so two plugins with different configs
coexist in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    EncodingPayloadConverter,
)
from temporalio.plugin import SimplePlugin
from temporalio.worker import ReplayerConfig, WorkerConfig, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from jamjet_temporal._shared._runtime import mark_plugin_built
from jamjet_temporal._shared._storeurl import absolute_store_url, store_fix, store_identity
from jamjet_temporal.approvals._load import ApprovalConfig, load_approvals
from jamjet_temporal.authoring._task import task_definition
from jamjet_temporal.budget._prices import PriceTable
from jamjet_temporal.errors import ConfigError, ExportError, JamJetError
from jamjet_temporal.gate._workflow import governance_id
from jamjet_temporal.pipeline._workflow import PipelineWorkflow
from jamjet_temporal.plugin._config import DEFAULT_AUDIT_STORE, JamJetConfig
from jamjet_temporal.policy import Policy, load_policy

if TYPE_CHECKING:
    from jamjet_temporal.gate._activities import AuditSink
    from jamjet_temporal.plugin._closing import RunCloser

PLUGIN_NAME = "jamjet.JamJetPlugin"
_T = TypeVar("_T")
_logger = logging.getLogger("jamjet_temporal")

# What Temporal's sandbox passes through from the worker instead of re-importing per run. Only
# what must be; modules that our passed-through modules import (yaml, tiktoken, genai_prices,
# confusable_homoglyphs) are loaded by the worker's own import and need no entry.
_PASSTHROUGH = (
    # Ours. The interceptors are loaded outside the sandbox and workflow code inside it; both
    # must see one copy of the workflow-side state (the run's gate, the arguments of the call
    # being decided, budget scopes, all ContextVars set per run) and of our pydantic payload
    # classes, or a re-imported copy would find no gate. Safe: package __init__s import lazily,
    # so workflow code loads workflow-side modules only, and those keep no module-level state
    # between runs and import nothing that does I/O (tests/test_boundary.py proves both).
    "jamjet_temporal",
    # pydantic: payload classes are built once per worker, not once per run (building them is
    # most of a run's import time), and the data converter outside the sandbox and workflow code
    # inside it must agree on one class per model. Pure: no I/O, no per-run state.
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
    # cryptography: a Rust extension module, which CPython cannot initialise a second time in
    # one process; a workflow module that imports it (our approval and key types do) would fail
    # sandbox validation with a SystemError. Pure computation; no I/O at import, no run state.
    "cryptography",
    # jinja2: pipeline templates and conditions (pipeline._template, pipeline._expr). Pure and
    # deterministic; imported once per worker instead of once per workflow run.
    "jinja2",
    # markupsafe: imported by jinja2. Pure and deterministic; imported once per worker too.
    "markupsafe",
)


class SharedPydanticPayloadConverter(PydanticPayloadConverter):
    """Temporal's pydantic payload converter, its component converters built once.

    Temporal builds a new payload converter whenever it clones a data converter for a
    serialization context (every activity and workflow task when a codec takes context). A
    plain ``PydanticPayloadConverter`` builds its converters anew each time, each with an
    empty cache of pydantic ``TypeAdapter``s; this one shares one set, and so one cache.
    """

    _components: ClassVar[tuple[EncodingPayloadConverter, ...]] = ()

    def __init__(self) -> None:
        cls = SharedPydanticPayloadConverter
        if not cls._components:
            cls._components = tuple(PydanticPayloadConverter().converters.values())
        CompositePayloadConverter.__init__(self, *cls._components)


_PYDANTIC = DataConverter(payload_converter_class=SharedPydanticPayloadConverter)


def _converter(existing: DataConverter | None) -> DataConverter:
    if existing is None or existing == DataConverter.default:
        return _PYDANTIC
    # Keep the user's codec (encryption) and failure converter; only add pydantic support.
    return dataclasses.replace(existing, payload_converter_class=SharedPydanticPayloadConverter)


def _sealing(sink: AuditSink | None) -> Callable[[DataConverter | None], DataConverter]:
    """The data converter callback: ours, and the audit sink seals payloads with its codec."""

    def configure(existing: DataConverter | None) -> DataConverter:
        converter = _converter(existing)
        if sink is not None:
            sink.use_converter(converter)
        return converter

    return configure


def _adding(items: Sequence[_T]) -> Callable[[Sequence[_T] | None], Sequence[_T]]:
    """Appends ``items`` to a worker's list, except those it has already.

    A plugin given to the client reaches every worker built on it; given to such a worker as
    well, Temporal applies it twice. Without this, the second time would register our
    activities and workflow again, and the worker would refuse the duplicate names.
    """

    def add(existing: Sequence[_T] | None) -> Sequence[_T]:
        have = list(existing or [])
        return have + [item for item in items if item not in have]

    return add


def _around(
    outer: Callable[[], AbstractAsyncContextManager[None]],
    inner: Callable[[], AbstractAsyncContextManager[None]] | None,
) -> Callable[[], AbstractAsyncContextManager[None]]:
    """A worker's run context: ``outer`` around ``inner`` (when there is one)."""

    @contextlib.asynccontextmanager
    async def context() -> AsyncIterator[None]:
        async with outer():
            if inner is None:
                yield
            else:
                async with inner():
                    yield

    return context


def _runner(closer: RunCloser | None) -> Callable[[WorkflowRunner | None], WorkflowRunner]:
    """The workflow runner callback: the sandbox passes our modules through, and the runner
    records each run's ``run.closed`` as it completes the run (``_closing``)."""

    def configure(existing: WorkflowRunner | None) -> WorkflowRunner:
        from jamjet_temporal.plugin._closing import ClosingRunner, ClosingSandboxedRunner

        runner = existing or SandboxedWorkflowRunner()
        if isinstance(runner, SandboxedWorkflowRunner):
            restrictions = runner.restrictions.with_passthrough_modules(*_PASSTHROUGH)
            if closer is not None and type(runner) is SandboxedWorkflowRunner:
                return ClosingSandboxedRunner(
                    restrictions=restrictions, runner_class=runner.runner_class, closer=closer
                )
            runner = dataclasses.replace(runner, restrictions=restrictions)
        if closer is None or isinstance(runner, ClosingRunner | ClosingSandboxedRunner):
            return runner
        return ClosingRunner(runner, closer)

    return configure


class JamJetPlugin(SimplePlugin):
    """Adds jamjet-temporal to a Temporal client, its workers and replayers.

    Example::

        client = await Client.connect("localhost:7233", plugins=[JamJetPlugin()])
        worker = Worker(client, task_queue="agents", workflows=[pipeline],
                        activities=[fetch_data, analyze])

    Args:
        config: Plugin configuration; defaults to ``JamJetConfig()``.
        tasks: ``@task`` functions to register on every worker built with this plugin (tools
            named by YAML pipelines, for instance). Plain activities may be passed to the
            worker as usual.

    Raises:
        ConfigError: ``tasks`` contains something that is not a ``@task`` function, or two
            tasks share a name.
        PolicyError: The configured policy file is unreadable or invalid.
        ApprovalConfigError: The configured approvals file is unreadable or invalid.
        ConfigError: A price override (``JamJetConfig.budget.prices``) is invalid.
        TracingConfigError: Tracing is on and its tracer provider is not Temporal's
            replay-safe one, or an exporter the environment names cannot be made.
    """

    def __init__(
        self, config: JamJetConfig | None = None, *, tasks: Sequence[Callable[..., object]] = ()
    ) -> None:
        self.config = config or JamJetConfig()
        names: set[str] = set()
        for fn in tasks:
            defn = task_definition(fn)
            if defn is None:
                raise ConfigError(
                    f"JamJetPlugin(tasks=...): {fn!r} is not a @task function; decorate it "
                    "with @task (plain activities go to Worker(activities=...))"
                )
            if defn.inline:
                raise defn.not_an_activity("JamJetPlugin(tasks=...)")
            if defn.name in names:
                raise ConfigError(f"JamJetPlugin(tasks=...): two tasks are named '{defn.name}'")
            names.add(defn.name)
        policy = self.config.policy
        if policy is not None and not isinstance(policy, Policy):
            policy = load_policy(policy)
        approvals = self.config.approvals
        if approvals is not None and not isinstance(approvals, ApprovalConfig):
            approvals = load_approvals(approvals)
        mark_plugin_built()
        # The activity side (HTTP clients, database drivers) is imported here, not at module
        # level: a workflow module that imports JamJetPlugin (to build its worker) is
        # re-imported by Temporal's sandbox for every run, on workers with or without us.
        from jamjet_temporal.audit._export import check_redaction_rules
        from jamjet_temporal.budget._activities import BudgetActivities
        from jamjet_temporal.gate._activities import AuditSink, RecordActivities
        from jamjet_temporal.llm._activities import LLMActivities
        from jamjet_temporal.memory._activities import EngramActivities
        from jamjet_temporal.plugin._closing import RunCloser
        from jamjet_temporal.plugin._interceptor import JamJetInterceptor

        sink = None
        audit_id = ""
        self._default_store: str | None = None
        if self.config.audit.store:
            fix = store_fix("audit.db")
            url = absolute_store_url(self.config.audit.store, what="audit store", fix=fix)
            audit_id = store_identity(self.config.audit.store, what="audit store", fix=fix)
            if self.config.audit.store == DEFAULT_AUDIT_STORE:
                self._default_store = url
            try:
                check_redaction_rules(self.config.audit.redact)
            except ExportError as err:
                raise ConfigError(f"JamJetConfig.audit.redact: {err}") from None
            sink = AuditSink(url, self.config.audit.key, self.config.audit.redact)
        llm = LLMActivities(self.config.llm.base_url, self.config.llm.timeout)
        table = PriceTable(self.config.budget.prices)
        prices = BudgetActivities(table)
        embedder = None
        if self.config.memory.embeddings_url:
            from jamjet_temporal.memory._embed import OpenAIEmbedder

            embedder = OpenAIEmbedder(
                self.config.memory.embeddings_url, self.config.memory.embeddings_model
            )
        memory = EngramActivities(self.config.memory.store, embedder)
        activities: list[Callable[..., Awaitable[object] | object]] = [
            llm.chat,
            prices.quote,
            RecordActivities(sink).record,
            memory.context,
            memory.ingest,
            memory.facts,
            memory.forget,
            *tasks,
        ]
        run_context: Callable[[], AbstractAsyncContextManager[None]] | None = None
        if self.config.mcp_servers:
            # Imported only when servers are configured: the mcp SDK is the [mcp] extra.
            from jamjet_temporal.mcp._activities import McpActivities

            mcp = McpActivities(self.config.mcp_servers)
            activities += [mcp.list_tools, mcp.call_tool]
            # Each worker's event loop keeps one connection per server; its last worker to
            # stop closes them (stdio servers' processes end with them).
            run_context = mcp.run_context
        if self.config.a2a_agents is not None:
            # Imported only when delegation is on: the a2a-sdk client is the [a2a] extra.
            from jamjet_temporal.a2a._activities import A2AActivities

            activities.append(A2AActivities(self.config.a2a_agents).send)
        interceptors: list[Any] = [
            JamJetInterceptor(
                policy, sink, approvals, governance_id(policy, approvals, audit_id), llm, table
            )
        ]
        closer = self._closer = None if sink is None else RunCloser(sink)
        if closer is not None:
            run_context = _around(closer.serving, run_context)
        runner: Callable[[WorkflowRunner | None], WorkflowRunner] = _runner(closer)
        if self.config.tracing is not None:
            # Imported only when tracing is on: OpenTelemetry is the [otel] extra. Temporal's
            # interceptor goes first (outermost): its trace context is current in all the rest.
            from jamjet_temporal.tracing._plugin import Tracing

            tracing = Tracing(self.config.tracing, table)
            interceptors = [*tracing.interceptors, *interceptors]
            runner = tracing.runner(runner)
            run_context = tracing.run_context(run_context)
        super().__init__(
            PLUGIN_NAME,
            data_converter=_sealing(sink),
            interceptors=interceptors,
            activities=_adding(activities),
            workflows=_adding([PipelineWorkflow]),
            workflow_runner=runner,
            workflow_failure_exception_types=[JamJetError],
            run_context=run_context,
        )

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """Adds the plugin to a worker, saying where the audit trail goes if nobody chose."""
        if self._default_store is not None:
            _logger.warning(
                "jamjet: the audit trail goes to %s (the default, in the working directory); "
                "choose it with JamJetConfig(audit=AuditConfig(store=...))",
                self._default_store.removeprefix("sqlite:///"),
            )
        for fn in config.get("activities", ()):
            defn = task_definition(fn)
            if defn is not None and defn.inline:
                # Else Temporal's own "missing attributes, was it decorated with @activity.defn?"
                raise defn.not_an_activity("Worker(activities=...)")
        config = super().configure_worker(config)
        self._close_unsandboxed(config)
        # The audit trail names the worker as `jamjet status` does: Worker(identity=...), not
        # the client's pid@host.
        from jamjet_temporal.gate._activities import WorkerIdentity

        interceptors = list(config.get("interceptors", ()))
        if not any(isinstance(i, WorkerIdentity) for i in interceptors):
            identity = config.get("identity") or config["client"].identity
            config["interceptors"] = [*interceptors, WorkerIdentity(identity)]
        return config

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        """Adds the plugin to a replayer (it replays runs as the plugin's workers run them)."""
        config = super().configure_replayer(config)
        self._close_unsandboxed(config)
        return config

    def _close_unsandboxed(self, config: WorkerConfig | ReplayerConfig) -> None:
        """Workflows outside the sandbox hand ``run.closed`` over too (one way per type)."""
        from jamjet_temporal.plugin._closing import ClosingRunner

        existing = config.get("unsandboxed_workflow_runner")
        if self._closer is not None and existing is not None:
            if not isinstance(existing, ClosingRunner):
                config["unsandboxed_workflow_runner"] = ClosingRunner(existing, self._closer)
