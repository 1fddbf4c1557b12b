"""The worker of bench/throughput.py (the workloads are in _throughput_plain/_sugar).

``bench/throughput.py --worker VARIANT ADDRESS QUEUE [AUDIT_URL]`` runs :func:`serve` in a
process of its own per variant, so its CPU time (what the layer costs) is its own: ``bare``
(plain temporalio, no plugin), ``plugin`` (JamJetPlugin, no policy, no audit), ``gates`` (a
100-rule policy and the audit trail at AUDIT_URL).
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker import Worker

if TYPE_CHECKING:
    from jamjet_temporal import JamJetPlugin
    from jamjet_temporal.policy import Policy

from bench._throughput_plain import PlainFiveSteps, plain_step
from bench._throughput_sugar import five_steps, step


def hundred_rules() -> Policy:
    """99 rules that do not match, then the one that allows the workload's tool."""
    from jamjet_temporal.policy import Policy, Rule

    rules = [Rule(match=f"svc{i}.*", action="block") for i in range(99)]
    return Policy(rules=(*rules, Rule(match="throughput.*", action="allow")))


def plugin_for(variant: str, audit_url: str | None) -> JamJetPlugin | None:
    """The plugin of each variant (None: bare temporalio)."""
    from jamjet_temporal import JamJetConfig, JamJetPlugin
    from jamjet_temporal.plugin import AuditConfig

    if variant == "bare":
        return None
    if variant == "plugin":
        return JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None)))
    if variant == "policy":  # diagnosis: the policy without the audit trail
        return JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None), policy=hundred_rules()))
    if variant == "audit":  # diagnosis: the audit trail without a policy
        return JamJetPlugin(JamJetConfig(audit=AuditConfig(store=audit_url)))
    return JamJetPlugin(JamJetConfig(audit=AuditConfig(store=audit_url), policy=hundred_rules()))


async def serve(variant: str, address: str, queue: str, audit_url: str | None) -> None:
    """Poll ``queue`` as the variant's worker; print ``ready`` once polling; stop on SIGTERM."""
    plugin = plugin_for(variant, audit_url)
    client = await Client.connect(address, plugins=[plugin] if plugin else [])
    workflows, activities = (
        ([PlainFiveSteps], [plain_step]) if plugin is None else ([five_steps], [step])
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client, task_queue=queue, workflows=workflows, activities=activities):
        print("ready", flush=True)
        await stop.wait()
