"""The A2A delegation use case end to end (``python -m starters.a2a_delegation``): a coordinator
delegates to two specialists served by ``jamjet a2a serve`` in processes of their own, with
signed tokens, under one budget their spend counts against."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from jamjet_temporal.cli import DevServer
from starters.a2a_delegation import main

# What the scripted model reports, priced for gpt-4o ($2.50 / $10 per million tokens):
# research 400+500 and 700+250 tokens, the risk review 500+300.
RESEARCH = Decimal("0.001") + Decimal("0.005") + Decimal("0.00175") + Decimal("0.0025")
RISK = Decimal("0.00125") + Decimal("0.003")


async def test_the_coordinators_budget_is_charged_what_the_specialists_spent(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    lines, result = await main(tmp_path, temporal_server.address)
    text = "\n".join(lines)
    assert "[research] A2A agent at http://127.0.0.1:" in text
    assert "delegated to research (slice $0.02)" in text
    assert "delegated to risk (slice $0.01)" in text
    assert text.count("accepted the signed token (1 task)") == 2
    assert Decimal(result["left_after_research"]) == Decimal("0.05") - RESEARCH
    assert Decimal(result["left"]) == Decimal("0.05") - RESEARCH - RISK
    assert result["review"]["review"].startswith("Risk: MEDIUM")
    assert "▸ Budget: $0.05 - $0.0145 spent by the specialists = $0.0355 left" in lines
