"""The MCP example prints what happened, read back from the run, the audit trail and the folder:
an agent reads through the official filesystem server and stamps with the time server; the
report's write waits for alice across a SIGKILLed worker, then runs once."""

from __future__ import annotations

import re
from pathlib import Path

from jamjet_temporal.cli import DevServer
from starters import mcp_tools as demo
from tests.mcp.helpers import needs_filesystem_server, needs_time_server


@needs_time_server
@needs_filesystem_server
async def test_mcp_demo_reads_stamps_and_writes_once_after_approval(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    lines = await demo.main(workdir=tmp_path, address=temporal_server.address)
    assert lines[0] == (
        "▸ [reporter] agent called MCP tools: filesystem.list_directory ✓, "
        "filesystem.read_text_file ✓, filesystem.read_text_file ✓, time.get_current_time ✓"
    )
    report = tmp_path / "shelf" / "REPORT.md"
    assert lines[1] == (
        "▸ [filesystem.write_file] held for approval · approver: alice@example.com · "
        f"path: {report.resolve()}"
    )
    assert lines[2] == "...worker killed (SIGKILL); a new worker takes over..."
    assert lines[3] == "▸ [approval] resumed · still waiting (durable)"
    assert re.fullmatch(r"▸ \[approval\] approved by alice@example\.com at \d\d:\d\d", lines[4])
    assert lines[5] == (
        "▸ Policy: rule 'filesystem.*' require_approval when destructive · "
        "write_file destructiveHint=True"
    )
    assert re.fullmatch(
        r"▸ \[filesystem\.write_file\] ✓ completed · REPORT\.md written 1x \(\d+ bytes\)", lines[6]
    )
    assert re.fullmatch(r"▸ exec_[0-9a-f]{4} · 9 MCP and model calls, 2 tool lists .*", lines[7])
    stamp = re.fullmatch(r"▸ Report stamped: _Stamped (\S+) \(mcp-server-time\)\._", lines[8])
    assert stamp is not None and stamp[1].endswith("+00:00")
    text = report.read_text()
    assert text.startswith("# Shelf report") and stamp[1] in text
    assert sorted(p.name for p in report.parent.iterdir()) == [
        "REPORT.md",
        "deploys.md",
        "incidents.md",
    ]
