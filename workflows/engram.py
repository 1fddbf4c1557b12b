"""Gate 6's agent: it remembers each session, and starts the next one from its memory."""

from __future__ import annotations

from datetime import datetime

from jamjet_temporal import engram, llm, workflow
from jamjet_temporal.memory import Context, Ingested, Message


@workflow(name="engram-demo.remember")
async def remember_session(
    user: str, session: str, at: datetime, messages: list[Message]
) -> Ingested:
    """End of a session: keep its turns and the durable facts the model finds in them."""
    return await engram.remember(user, session, messages, at=at)


@workflow(name="engram-demo.answer")
async def answer(user: str, topic: str, question: str) -> tuple[Context, str]:
    """A new session: what do we know about this user that matters for the topic?"""
    context = await engram.context_for(
        user=user,
        topic=topic,
        budget_tokens=400,
    )
    reply = await llm.call(question, system=f"What you know about the user:\n{context.text}")
    return context, reply
