"""Gate 6 as the showcase prints it, end to end: real dev server, real model server, SQLite."""

from __future__ import annotations

from pathlib import Path

from jamjet_temporal.budget._tokens import count_text_tokens
from jamjet_temporal.cli import DevServer
from starters import engram as demo

SHOWCASE = """\
[ from earlier sessions ]
▸ sunil prefers concise answers (s1)
▸ project: JamJet Cloud (s1)
▸ shipped policy violations panel (s7)
▸ location: Amsterdam (superseded Pune, s6)
[ token budget: 287 of 400 ]"""


async def test_session_8_context_is_the_showcase_block(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    context = await demo.main(
        f"sqlite:///{tmp_path / 'memory.db'}", quiet=True, address=temporal_server.address
    )
    assert str(context) == SHOWCASE
    # The figure is the real size of what the model is given, never over the budget.
    assert context.tokens_used == count_text_tokens(context.text) == 287
    lines = context.text.splitlines()
    # Timestamps (session dates), the supersession, and supporting excerpts from the turns
    # that matched "release notes" where the fact's own words did not.
    assert lines[:2] == ["[ from earlier sessions ]", "s1 (2026-03-02)"]
    assert "s6 (2026-04-06)" in lines and "s7 (2026-04-13)" in lines
    assert "▸ location: Amsterdam (superseded Pune)" in lines
    excerpts = [line for line in lines if line.startswith("  ↳ sunil: ")]
    assert len(excerpts) == 3 and all("release notes" in line for line in excerpts)
    # Durable facts, not the transcript: sessions 2-5 said nothing about release notes.
    assert "marathon" not in context.text and "Grafana" not in context.text
    assert "Pune" not in context.text.replace("(superseded Pune)", "")
