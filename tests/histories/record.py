"""Save run histories as replay fixtures: python tests/histories/record.py RUN_ID [RUN_ID ...]

Reads from the configured Temporal (TEMPORAL_ADDRESS, default 127.0.0.1:7233). Commit the files:
``tests/test_replay.py`` replays every one of them with the current code, so a change that
breaks determinism for runs already in flight fails CI.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from jamjet_temporal import JamJetPlugin
from jamjet_temporal._shared._connect import connect


async def main(run_ids: list[str]) -> None:
    client = await connect(plugins=[JamJetPlugin()])
    for run_id in run_ids:
        history = await client.get_workflow_handle(run_id).fetch_history()
        path = Path(__file__).parent / f"{run_id}.json"
        path.write_text(history.to_json())
        print(f"{path}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
