"""Hosts as Linux network namespaces on this machine, joined by a bridge (needs root).

Each host is a network namespace with a loopback and one ``eth0``, the far end of a veth pair
whose near end is a port of a bridge in the root namespace. The bridge has the first address
of a private /24, so the root namespace (the test, PostgreSQL's forwarder) is a host on that
network too. Nothing is routed anywhere else: all traffic stays on the machine.

Cutting a host's link sets the near end of its veth down: the host's packets go nowhere (TCP
retransmits, connects time out), as when a cable is pulled, until the link is set up again.

Every name made here starts with ``jjmh`` and a random tag, so runs in parallel do not meet and
``python scripts/multihost_cleanup.py`` can remove what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

PREFIX = "jjmh"
"""Every namespace, bridge and veth made here starts with it."""


def run_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip ARGS``; raises with ip's own message when it fails and ``check``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=20)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def netns_problem() -> str | None:
    """Why hosts cannot be made here (not root, no ``ip netns``), or None when they can."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add, veth pairs, a bridge)"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"{PREFIX}-probe-{secrets.token_hex(3)}"
    made = run_ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' does not work here: {made.stderr.strip()}"
    run_ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no address or route of the root namespace overlaps."""
    used: list[ipaddress.IPv4Network] = []
    for line in run_ip("-4", "-o", "addr", "show").stdout.splitlines():
        found = re.search(r"inet (\S+)", line)
        if found:
            used.append(ipaddress.IPv4Interface(found[1]).network)
    for line in run_ip("-4", "route", "show").stdout.splitlines():
        first = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            if first != "default":
                used.append(ipaddress.IPv4Network(first, strict=False))
    for _ in range(200):
        net = ipaddress.IPv4Network(
            f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24"
        )
        if not any(net.overlaps(other) for other in used):
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the test network")


@dataclass
class Network:
    """A bridge and one namespace per host; ``up()`` makes them, ``down()`` removes them all.

    Args:
        hosts: Host names (short: they go into interface names of at most 15 characters).
    """

    hosts: Sequence[str]
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)
    _made_namespaces: list[str] = field(default_factory=list)
    _made_links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for host in self.hosts:
            if not re.fullmatch(r"[a-z0-9]{1,5}", host):
                raise ValueError(f"host name {host!r}: 1-5 lowercase letters or digits")

    # -- names ----------------------------------------------------------------------------

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.tag}br"

    @property
    def bridge_ip(self) -> str:
        """The root namespace's address on the test network."""
        return str(self.subnet.network_address + 1)

    def namespace(self, host: str) -> str:
        return f"{PREFIX}-{self.tag}-{host}"

    def link(self, host: str) -> str:
        """The near (root namespace, bridge port) end of the host's veth pair."""
        return f"{PREFIX}{self.tag}{host}"

    def ip(self, host: str) -> str:
        """The host's address (``eth0`` in its namespace)."""
        return str(self.subnet.network_address + 10 + list(self.hosts).index(host))

    def exec_args(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the host's namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    # -- lifecycle -----------------------------------------------------------------------

    def up(self) -> None:
        """Make the bridge and every host; on failure what was made is left for ``down()``."""
        run_ip("link", "add", self.bridge, "type", "bridge")
        self._made_links.append(self.bridge)
        run_ip("addr", "add", f"{self.bridge_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        run_ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            ns, near, far = self.namespace(host), self.link(host), f"{self.link(host)}p"
            run_ip("netns", "add", ns)
            self._made_namespaces.append(ns)
            run_ip("link", "add", near, "type", "veth", "peer", "name", far)
            self._made_links.append(near)
            run_ip("link", "set", far, "netns", ns)
            run_ip("link", "set", near, "master", self.bridge)
            run_ip("link", "set", near, "up")
            run_ip("-n", ns, "link", "set", far, "name", "eth0")
            run_ip(
                "-n", ns, "addr", "add", f"{self.ip(host)}/{self.subnet.prefixlen}", "dev", "eth0"
            )
            run_ip("-n", ns, "link", "set", "eth0", "up")
            run_ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, host: str) -> None:
        """Pull the host's cable: its link goes down, its packets go nowhere."""
        run_ip("link", "set", self.link(host), "down")

    def restore(self, host: str) -> None:
        """Plug the cable back in."""
        run_ip("link", "set", self.link(host), "up")

    def down(self) -> list[str]:
        """Kill what still runs in the namespaces, remove links and namespaces; never raises.

        Returns:
            What could not be removed (empty when all went).
        """
        left: list[str] = []
        for ns in self._made_namespaces:
            kill_namespace_processes(ns)
        for name in reversed(self._made_links):  # a veth's far end goes with its near end
            done = run_ip("link", "del", name, check=False)
            if done.returncode != 0 and "Cannot find device" not in done.stderr:
                left.append(f"link {name}: {done.stderr.strip()}")
        for ns in self._made_namespaces:
            done = run_ip("netns", "del", ns, check=False)
            if done.returncode != 0:
                left.append(f"netns {ns}: {done.stderr.strip()}")
        self._made_links.clear()
        self._made_namespaces.clear()
        return left


def kill_namespace_processes(ns: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process in the namespace ``ns`` (only this harness starts any there)."""
    done = run_ip("netns", "pids", ns, check=False)
    pids = [int(p) for p in done.stdout.split() if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
        if pids:
            time.sleep(0.05)
    return pids


def leftovers() -> tuple[list[str], list[str]]:
    """Namespaces and links of this harness that exist now (a killed run's, or a live one's)."""
    namespaces = [
        line.split()[0]
        for line in run_ip("netns", "list", check=False).stdout.splitlines()
        if line.startswith(f"{PREFIX}-")
    ]
    links = []
    for line in run_ip("-o", "link", "show", check=False).stdout.splitlines():
        found = re.match(r"\d+: ([^:@]+)", line)
        if found and found[1].startswith(PREFIX):
            links.append(found[1])
    return namespaces, links
