"""Remove what a killed multi-host test run left behind (tests/multihost/):

    sudo .venv/bin/python scripts/multihost_cleanup.py          # list, then remove
    sudo .venv/bin/python scripts/multihost_cleanup.py --dry-run

The test cleans up after itself, failures included; only a run killed outright (SIGKILL, a
lost CI runner) leaves network namespaces, bridges and veths named ``jjmh…``, processes inside
those namespaces, the PostgreSQL forwarder listening on the bridge, and roles and schemas named
``jjmh_…`` in the ``test`` database. This removes exactly those: processes are ended by id,
found through ``ip netns pids`` of the harness's own namespaces and, for the forwarder, by its
command line (``tests.multihost.pgproxy``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.multihost.netns import kill_namespace_processes, leftovers, run_ip

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=root connect_timeout=3"


def forwarders() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"tests.multihost.pgproxy" in argv:
                found.append(int(entry.name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    args = parser.parse_args()
    namespaces, links = leftovers()
    proxies = forwarders()
    schemas: list[str] = []
    roles: list[str] = []
    try:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            schemas = [
                str(r[0])
                for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'jjmh\\_%'"
                ).fetchall()
            ]
            roles = [
                str(r[0])
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname LIKE 'jjmh\\_%'"
                ).fetchall()
            ]
    except Exception as exc:
        print(f"PostgreSQL not checked: {exc}")
    print(f"namespaces: {namespaces or '-'}")
    print(f"links: {links or '-'}")
    print(f"forwarder processes: {proxies or '-'}")
    print(f"schemas: {schemas or '-'}")
    print(f"roles: {roles or '-'}")
    if args.dry_run:
        return 0
    for ns in namespaces:
        kill_namespace_processes(ns)
    for pid in proxies:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for link in links:
        run_ip("link", "del", link, check=False)
    for ns in namespaces:
        run_ip("netns", "del", ns, check=False)
    if schemas or roles:
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)",
                (roles,),
            )
            for schema in schemas:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            for role in roles:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    namespaces, links = leftovers()
    if namespaces or links:
        print(f"still there: {namespaces} {links}")
        return 1
    print("clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
