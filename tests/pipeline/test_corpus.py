"""Every ``jamjet init`` template, as a user gets it: ``jamjet init`` writes it, ``jamjet validate``
passes it with no warning, and it runs end to end on the real dev server with the local model
server, through ``python -m jamjet_temporal run`` (events and approvals sent from here, the
route taken checked in the run's result).

The templates are JamJet's template kinds (its ``jamjet init`` registry) written in JamJet's
documented shapes; each runs with no ``--input`` unless a scenario needs a marker in the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client
from temporalio.service import RPCError
from typer.testing import CliRunner, Result

from jamjet_temporal._shared._wire import PIPELINE_EVENT_SIGNAL, PIPELINE_WAITING_QUERY
from jamjet_temporal.approvals import find_pending
from jamjet_temporal.cli._app import app
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.cli._init import describe, templates
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptToolCall
from jamjet_temporal.pipeline import PipelineResult
from jamjet_temporal.pipeline._workflow import PipelineEvent

TEMPLATES = templates()
#: JamJet's template kinds this project must ship (those of issue 13, by their `jamjet init`
#: names; JamJet's research, mcp-tool-provider, a2a-server, cloud-agent and quickstart are not).
REQUIRED = {
    "hello-agent",
    "single-agent-tool-flow",
    "research-agent",
    "approval-workflow",
    "hitl-approval",
    "mcp-tool-consumer",
    "rag-assistant",
    "code-reviewer",
    "multi-agent-review",
    "a2a-delegator",
}
PROJECT = "my-agent"
JAMJET = [sys.executable, "-m", "jamjet_temporal"]
RUNNER = CliRunner()


def jamjet(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JAMJET, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def cli(*args: str) -> Result:
    """The command in this process (no interpreter start-up, a few seconds each)."""
    return RUNNER.invoke(app, list(args))


def init(name: str, parent: Path) -> Path:
    target = parent / PROJECT
    done = cli("init", str(target), "--template", name)
    assert done.exit_code == 0, done.output
    return target


def source_files(name: str) -> set[str]:
    root = Path(str(TEMPLATES[name]))
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


# --------------------------------------------------------------------------------------------
# (c) jamjet init


def test_init_lists_every_template_with_its_description() -> None:
    missing = REQUIRED - set(TEMPLATES)
    assert not missing, f"templates not written yet: {sorted(missing)}"
    done = jamjet("init", "--list", cwd=Path.cwd())  # the real command, once
    assert done.returncode == 0, done.stdout + done.stderr
    listed = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert set(listed) == set(TEMPLATES)
    for name, entry in TEMPLATES.items():
        assert listed[name].strip() == describe(entry) != "", name


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_init_writes_the_template_as_a_project(name: str, tmp_path: Path) -> None:
    project = init(name, tmp_path)
    written = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    assert written == source_files(name)
    assert {"workflow.yaml", "policy.yaml", "test_workflow.py"} <= written
    pipeline = yaml.safe_load((project / "workflow.yaml").read_text(encoding="utf-8"))
    assert pipeline["workflow"]["id"] == PROJECT
    if (project / "jamjet.toml").exists():
        toml = tomllib.loads((project / "jamjet.toml").read_text(encoding="utf-8"))
        assert toml["project"]["name"] == PROJECT
    for path in project.rglob("*"):
        if path.is_file():
            assert "__PROJECT__" not in path.read_text(encoding="utf-8"), path
    # A second init into the same folder refuses rather than overwrite.
    again = cli("init", str(project), "--template", name)
    assert again.exit_code != 0 and "already has" in again.output


# --------------------------------------------------------------------------------------------
# (a) jamjet validate


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_validates_with_no_warning(name: str, tmp_path: Path) -> None:
    project = init(name, tmp_path)
    done = cli("validate", str(project / "workflow.yaml"))
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"✓ {project / 'workflow.yaml'}: valid"), done.output
    assert not [line for line in done.output.splitlines() if line.startswith("!")], done.output


# --------------------------------------------------------------------------------------------
# (b) every template runs end to end


@dataclass
class Project:
    """A template, initialised under tmp_path, and how to run it against the test servers."""

    name: str
    path: Path
    client: Client
    server: DevServer
    model: ModelServer
    env: dict[str, str]

    async def start(self, *args: str) -> tuple[str, Run]:
        run_id = f"corpus-{self.name}-{uuid.uuid4().hex[:6]}"
        process = await asyncio.create_subprocess_exec(
            *JAMJET,
            "run",
            "workflow.yaml",
            "--address",
            self.server.address,
            "--policy",
            "policy.yaml",
            "--id",
            run_id,
            *args,
            cwd=self.path,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        return run_id, Run(process)

    async def run(self, *args: str) -> tuple[PipelineResult, str]:
        run_id, run = await self.start(*args)
        out = await run.finish()
        return await self.result(run_id), out

    async def result(self, run_id: str) -> PipelineResult:
        handle = self.client.get_workflow_handle(run_id, result_type=PipelineResult)
        result: PipelineResult = await handle.result()
        return result

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(jamjet, *args, cwd=self.path, env=self.env)


@dataclass
class Run:
    process: asyncio.subprocess.Process

    async def finish(self) -> str:
        try:
            out, _ = await asyncio.wait_for(self.process.communicate(), timeout=120)
        finally:
            if self.process.returncode is None:
                self.process.kill()
        text = out.decode()
        assert self.process.returncode == 0, text
        assert "Execution complete" in text, text
        return text


def route(result: PipelineResult) -> list[str]:
    """The working nodes the run went through; every template ends at its `end` node."""
    assert result.nodes[-1].type == "end", [r.node for r in result.nodes]
    return [record.node for record in result.nodes if record.type != "end"]


async def until_waiting(client: Client, run_id: str, event: str) -> None:
    for _ in range(1200):  # a minute at most, on a loaded machine
        try:
            waiting = await client.get_workflow_handle(run_id).query(PIPELINE_WAITING_QUERY)
        except RPCError:
            waiting = []
        if event in waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{run_id} never waited for '{event}'")


async def hello_agent(p: Project) -> None:
    result, _ = await p.run()
    assert route(result) == ["think"]
    assert result.state["query"] == "What is JamJet?"  # the schema's default: no --input
    assert str(result.state["answer"]).startswith("[gpt-4o-mini] Answer this question")


async def single_agent_tool_flow(p: Project) -> None:
    marker = uuid.uuid4().hex
    p.model.add_rules(
        [
            ScriptRule(
                id=f"agent-{marker[:6]}",
                marker=marker,
                responses=[
                    ScriptResponse(
                        tool_calls=[
                            ScriptToolCall(
                                name="find_lines",
                                arguments={"path": "notes/release.md", "word": "approvals"},
                            )
                        ]
                    ),
                    ScriptResponse(content=f"It adds signed human approvals. {marker}"),
                ],
            )
        ]
    )
    question = f"Does it add approvals? ({marker})"
    result, _ = await p.run("--input", json.dumps({"question": question}))
    assert route(result) == ["read-file", "answer"]
    assert "Human approvals" in str(result.state["file_content"])
    assert result.state["answer"] == f"It adds signed human approvals. {marker}"
    # The agent's tool ran and its result went back to the model.
    calls = [c for c in p.model.calls() if any(marker in str(m) for m in c["messages"])]
    tool_results = [m for m in calls[-1]["messages"] if m.get("role") == "tool"]
    assert len(tool_results) == 1 and "signed decisions" in str(tool_results[0]["content"])


async def research_agent(p: Project) -> None:
    # The judge fails the first report and passes the second: retry_with_feedback converges.
    p.model.add_rules(
        [
            ScriptRule(
                id="research-judge",
                marker="Rate its depth, accuracy and clarity",
                match="^Rubric:",
                responses=[
                    ScriptResponse(content='{"score": 2, "reason": "no open questions"}'),
                    ScriptResponse(content='{"score": 5, "reason": "thorough"}'),
                ],
            )
        ]
    )
    result, _ = await p.run()
    assert route(result) == ["research", "evaluate", "research", "evaluate"]
    evals = [r for r in result.nodes if r.node == "evaluate"]
    assert [r.outcome for r in evals] == ["retrying", "ok"]
    assert "judge scored 2/5 (min 3): no open questions" in str(evals[0].detail)
    retried = [
        c
        for c in p.model.calls()
        if "Research topic: What makes an AI agent production-ready?" in str(c["messages"])
    ][-1]
    assert "judge scored 2/5" in str(retried["messages"][-1]["content"])


async def approval_workflow(p: Project) -> None:
    # Approved with `jamjet resume`: the plan is executed. Rejected, with a reason, by the
    # Temporal signal `jamjet resume` sends (what the Temporal CLI or Web UI would send): the
    # branch's default.
    async def decide(data: dict[str, Any], by_cli: bool) -> PipelineResult:
        run_id, run = await p.start()
        await until_waiting(p.client, run_id, "human_approved")
        if by_cli:
            sent = await p.cli(
                "resume", run_id, "--event", "human_approved", "--data", json.dumps(data),
                "--address", p.server.address,
            )  # fmt: skip
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert f"{run_id}: sent 'human_approved' · the run resumes" in sent.stdout
        else:
            event = PipelineEvent(event="human_approved", data=data, sender="ops@example.com")
            await p.client.get_workflow_handle(run_id).signal(PIPELINE_EVENT_SIGNAL, event)
        await run.finish()
        return await p.result(run_id)

    approved, rejected = await asyncio.gather(
        decide({"approved": True}, by_cli=True),
        decide({"approved": False, "rejection_reason": "change freeze"}, by_cli=False),
    )
    head = ["propose", "await-approval", "check-approved"]
    assert route(approved) == [*head, "execute"]
    assert route(rejected) == [*head, "rejected"]
    assert approved.state["approved"] is True
    assert rejected.state["rejection_reason"] == "change freeze"  # the event's data, merged
    prompts = [str(c["messages"][-1]["content"]) for c in p.model.calls()]
    assert any("Reason: change freeze" in prompt for prompt in prompts)


async def hitl_approval(p: Project) -> None:
    # Throwaway keys (what `jamjet approvals keygen` writes) for the two people it names.
    keys = p.path.parent / "keys"
    config = (p.path / "approvals.yaml").read_text(encoding="utf-8")
    for who in ("you", "reviewer"):
        made = cli("approvals", "keygen", f"{who}@example.com", "--dir", str(keys))
        assert made.exit_code == 0, made.output
        public = re.search(r"ed25519:[A-Za-z0-9_-]{43}", made.output)
        assert public is not None, made.output
        config = re.sub(rf"ed25519:REPLACE-with-the-public-key-of-{who}-A*", public[0], config)
    (p.path / "approvals.yaml").write_text(config, encoding="utf-8")
    run_id, run = await p.start(
        "--approvals", "approvals.yaml", "--signer", str(keys / "you@example.com.key")
    )
    request = None
    for _ in range(1200):  # a minute at most, on a loaded machine
        try:
            request = await find_pending(p.client, run_id, None)
            break
        except Exception:
            await asyncio.sleep(0.05)
    assert request is not None, f"{run_id} never asked for approval"
    assert (request.action, request.requester) == ("send_customer_reply", "you@example.com")
    assert request.args["request"] == "Refund order #1234 for $99"
    reviewer = str(keys / "reviewer@example.com.key")
    approved = await p.cli(
        "approve", run_id, "--key", reviewer, "--digest", request.digest, "--comment", "ok",
        "--address", p.server.address,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stdout + approved.stderr
    await run.finish()
    result = await p.result(run_id)
    assert route(result) == ["draft", "await-review", "execute"]
    review = result.state["review"]
    assert isinstance(review, dict)
    assert review["approved"] is True and review["approved_by"] == ["reviewer@example.com"]
    assert "approved by reviewer@example.com" in str(result.state["final_response"])


async def mcp_tool_consumer(p: Project) -> None:
    result, _ = await p.run()
    assert route(result) == ["call-tool", "summarize"]
    found = str(result.state["tool_result"]).splitlines()
    assert len(found) == 5 and found[0].startswith("Durable execution, explained")
    assert str(result.state["summary"]).startswith('[gpt-4o-mini] Search results for "durable')


async def rag_assistant(p: Project) -> None:
    result, _ = await p.run()
    assert route(result) == ["retrieve", "answer"]
    context = result.state["context"]
    assert isinstance(context, list) and len(context) == 2
    assert context[0] == {
        "source": "refunds.md",
        "text": "Customers can ask for a refund within 30 days of purchase. Refunds up to $100 "
        "are approved by the support agent; larger refunds need a team lead's approval. "
        "Refunds go back to the original payment method within 5 business days.",
    }
    answer = result.state["answer"]  # structured output: the object its output_schema asks for
    assert isinstance(answer, dict) and set(answer) == {"answer", "citations"}
    assert isinstance(answer["citations"], list) and "[refunds.md]" in str(answer["answer"])


async def code_reviewer(p: Project) -> None:
    # The judge as the local model server answers it, unscripted: as a user runs the template.
    result, _ = await p.run()
    assert route(result) == ["fetch-pr", "review", "check-quality", "post-comment"]
    pr = result.state["pr_data"]
    assert isinstance(pr, dict) and pr["title"] == "Allow partial refunds"
    assert "amount = amount or order.total" in str(pr["diff"])
    posted = p.path / "reviews" / "acme-payments-42.md"
    assert result.state["comment_url"] == posted.as_uri()
    assert str(result.state["review"]) in posted.read_text(encoding="utf-8")


async def multi_agent_review(p: Project) -> None:
    # Round 1: both critics score 2, the writer gets their critique; round 2: both score 5.
    topic = f"Durable agents {uuid.uuid4().hex[:8]}"
    p.model.add_rules(
        [
            ScriptRule(
                id=f"{kind}-{topic[-8:]}",
                marker=topic,
                match=f"^{kind} ",
                responses=[
                    ScriptResponse(content=json.dumps({"score": 2, "critique": f"{kind}: weak"})),
                    ScriptResponse(content=json.dumps({"score": 5, "critique": f"{kind}: good"})),
                ],
            )
            for kind in ("Style", "Fact")
        ]
    )
    result, _ = await p.run("--input", json.dumps({"topic": topic}))
    rounds = ["write", "critics", "style-critic", "fact-critic", "tally", "route"]
    nodes = route(result)
    assert sorted(nodes) == sorted([*rounds, *rounds, "accept"])
    assert nodes[-2:] == ["route", "accept"]
    assert result.state["review"] == {
        "score": 5,
        "critique": "Style: Style: good\nFacts: Fact: good",
        "attempts": 2,
    }
    writes = [
        str(c["messages"][-1]["content"])
        for c in p.model.calls()
        if str(c["messages"][-1]["content"]).startswith(f"Topic: {topic}")
    ]
    assert len(writes) == 2 and "Previous critique (score 2/5)" in writes[1]
    assert "Style: Style: weak\nFacts: Fact: weak" in writes[1]
    # The two critics of a round ran concurrently.
    style = [r for r in result.nodes if r.node == "style-critic"]
    facts = [r for r in result.nodes if r.node == "fact-critic"]
    for one, other in zip(style, facts, strict=True):
        assert one.started_at < other.finished_at and other.started_at < one.finished_at


@contextlib.asynccontextmanager
async def local_agent(project: Path) -> AsyncIterator[None]:
    """The template's agent.py on a free port, and its workflow.yaml pointed at it."""
    port = free_port()
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "agent.py", "--port", str(port), cwd=project,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    card = await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")
                    if card.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        pipeline = project / "workflow.yaml"
        text = pipeline.read_text(encoding="utf-8")
        assert "http://127.0.0.1:7700" in text
        pipeline.write_text(text.replace(":7700", f":{port}"), encoding="utf-8")
        yield
    finally:
        agent.terminate()
        await agent.wait()


A2A_RESULT = (
    "Summarise the Q3 sales report: Q3 revenue grew 12% to $4.2M, led by the enterprise plan. "
    "(27 words summarised)"
)


async def a2a_delegator(p: Project) -> None:
    async with local_agent(p.path):
        result, _ = await p.run()
    assert route(result) == ["delegate", "summarize"]
    assert result.state["agent_result"] == A2A_RESULT


SCENARIOS: dict[str, Callable[[Project], Awaitable[None]]] = {
    "hello-agent": hello_agent,
    "single-agent-tool-flow": single_agent_tool_flow,
    "research-agent": research_agent,
    "approval-workflow": approval_workflow,
    "hitl-approval": hitl_approval,
    "mcp-tool-consumer": mcp_tool_consumer,
    "rag-assistant": rag_assistant,
    "code-reviewer": code_reviewer,
    "multi-agent-review": multi_agent_review,
    "a2a-delegator": a2a_delegator,
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
async def test_template_runs_end_to_end(
    name: str,
    tmp_path: Path,
    client: Client,
    temporal_server: DevServer,
    model_server: ModelServer,
) -> None:
    assert name in SCENARIOS, f"no scenario for template {name}: add one here"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))}
    env = {
        **base,
        "OPENAI_BASE_URL": model_server.base_url,
        # jamjet.toml starts MCP servers with `python`: this interpreter, as in a venv.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    project = await asyncio.to_thread(init, name, tmp_path)
    await SCENARIOS[name](Project(name, project, client, temporal_server, model_server, env))
