"""What the browser tests share: Debian's Chromium (Playwright never downloads one), how it is
started headless, and the approvals config of a run waiting for a $50,000 transfer."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APPROVALS = """\
approvers:
  - {{id: alice@example.com, public_key: "{alice}"}}
  - {{id: bob@example.com, public_key: "{bob}"}}
clients:
  - {{id: portal, public_key: "{portal}", acts_for: ["*@example.com"]}}
rules:
  - action: wire_transfer
    approvers: [alice@example.com, bob@example.com]
    thresholds: [{{field: amount, above: 100000, required: 2}}]
    timeout_seconds: 86400
"""
