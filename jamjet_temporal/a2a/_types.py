"""A2A payloads that cross into workflow history, and the gate's name for a delegation (pure).

A delegation is the tool ``a2a:ALIAS.SKILL`` for the policy gate and the audit trail: the prefix
``a2a:``, the agent's alias (or, for an agent given by URL, the URL as written), a dot, the
skill's id as the agent's card lists it. A delegation that names no skill (the agent chooses) is
``a2a:ALIAS.*``: a glob over the agent's skills (``a2a:research.*``) catches it, an allow-list of
single skills does not let it through. Stdlib and pydantic only: workflow code and the gate
import this module inside the sandbox.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, JsonValue

from jamjet_temporal.a2a._config import RemoteAgent, alias_problem, url_problem
from jamjet_temporal.budget._ledger import Budget

__all__ = ["SUBJECT_PREFIX", "A2ADelegation", "delegation_problem", "is_url"]

#: What every delegation's tool name starts with, for the gate and policy globs.
SUBJECT_PREFIX: Final = "a2a:"
#: What a skill id may be for a delegation to go ahead: ASCII letters, digits, ``_``, ``-``,
#: ``.``, 1 to 128 of them. Anything else (a look-alike letter from another script, an
#: invisible character, a ``*``) could spell a blocked skill in a way the policy's globs do not
#: see, so the gate refuses it.
_SKILL_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def is_url(target: str) -> bool:
    """Whether a delegation's target is a URL (not an alias)."""
    return target.startswith(("http://", "https://"))


class A2ADelegation(BaseModel):
    """One delegation to one remote agent: the argument of ``jamjet.a2a.send``.

    Attributes:
        agent: The agent's alias (``JamJetConfig.a2a_agents``, or ``declared``), or its URL.
        skill: The skill's id, as the agent's card lists it; checked against the card before
            anything is sent. None: the agent chooses (the message says no skill).
        input: What to send: a string is one text part, anything else one data part.
        message_id: The A2A message id: the same for every attempt of this step (so a resent
            message is recognisably the same message), different for every other step.
            ``delegate()`` uses the step's idempotency key.
        declared: The agent as the workflow declared it (a pipeline's ``a2a.remote_agents``
            entry): its URL, card path and the NAMES of the variables holding credentials,
            never their values. Used when the worker itself does not declare ``agent``; a
            worker's own declaration of the alias wins.
        budget: The most the delegation may spend (``delegate(max_cost=, max_tokens=)``):
            set aside from the run's budget when one is in force (refused when what is left
            cannot cover it), sent to the agent as its budget, and charged with what the
            agent reports it spent. None: what is left of the run's budget, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str
    skill: str | None = None
    input: JsonValue = None
    message_id: str
    declared: RemoteAgent | None = None
    budget: Budget | None = None

    @property
    def subject(self) -> str:
        """The delegation's tool name for policy and audit: ``a2a:ALIAS.SKILL``."""
        return f"{SUBJECT_PREFIX}{self.agent}.{'*' if self.skill is None else self.skill}"


def delegation_problem(call: A2ADelegation) -> str | None:
    """Why the gate refuses ``call`` whatever the policy says (None when it does not)."""
    if is_url(call.agent):
        problem = url_problem(call.agent)
    else:
        problem = alias_problem(call.agent)
        if problem is not None:
            problem += " (nor an http:// or https:// URL)"
    if problem is not None:
        return problem
    if call.skill is not None and _SKILL_PATTERN.fullmatch(call.skill) is None:
        return (
            f"the A2A skill id {call.skill!r} is not 1 to 128 ASCII letters, digits, '_', '-' "
            "or '.': a name outside them could spell a blocked skill in a way policy rules do "
            "not match"
        )
    if not call.message_id:
        return "an A2A delegation needs a message id (the step's idempotency key)"
    return None
