"""The `casebook` command: for operators dead letters (`casebook dlq`) and parked outbox rows (`casebook outbox`);
for contributors `casebook upload` and `casebook export` (package casebook-client, libs/casebook-client).

Connection settings come from the same environment variables as the services (`CASEBOOK_KAFKA_BOOTSTRAP_SERVERS`,
`CASEBOOK_DATABASE_URL`), or from options. docs/operations.md shows the commands in use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from casebook_platform import dlq

# The contributor's subcommands live in casebook-client, imported only when one is asked for: the operator's
# commands keep working where only the platform is installed (the service images).
CLIENT_COMMANDS = {"upload": "de-identify a folder, a zip or a PACS study here, then upload it to a case",
                   "export": "request or follow an export and download it"}

async def _parked(url: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from casebook_platform.db import Database, new_metadata, platform_tables
    from casebook_platform.outbox import LAST_ERROR, PARKED

    t = platform_tables(new_metadata()).outbox
    db = Database(url, pool_size=1)
    try:
        async with db.sessions() as s:
            rows = (await s.execute(select(t.c.id, t.c.event_id, t.c.topic, t.c.attempts, t.c.created_at,
                                           func_length(t.c.value), t.c.headers)
                                    .where(t.c.headers.has_key(PARKED)).order_by(t.c.id))).all()
    finally:
        await db.dispose()
    return [{"id": r[0], "event_id": r[1], "topic": r[2], "attempts": r[3], "created_at": r[4].isoformat(),
             "bytes": r[5], "reason": r[6].get(PARKED), "last_error": r[6].get(LAST_ERROR)} for r in rows]


def func_length(col: Any) -> Any:
    from sqlalchemy import func

    return func.octet_length(col)


async def _unpark(url: str, ids: list[int]) -> int:
    from sqlalchemy import update

    from casebook_platform.db import Database, new_metadata, platform_tables
    from casebook_platform.outbox import PARKED

    t = platform_tables(new_metadata()).outbox
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            q = update(t).where(t.c.headers.has_key(PARKED)).values(headers=t.c.headers.op("-")(PARKED))
            if ids:
                q = q.where(t.c.id.in_(ids))
            return len((await s.execute(q.returning(t.c.id))).all())
    finally:
        await db.dispose()


def _outbox(args: Any) -> int:
    if not args.database_url:
        raise SystemExit("set --database-url or CASEBOOK_DATABASE_URL (the service's own database)")
    if args.outbox_command == "parked":
        rows = asyncio.run(_parked(args.database_url))
        print(json.dumps(rows, indent=2))
        return 0
    if not args.ids and not args.all:
        raise SystemExit("name the rows to retry (ids from `casebook outbox parked`) or pass --all")
    n = asyncio.run(_unpark(args.database_url, [int(i) for i in args.ids]))
    print(f"{n} row(s) handed back to the relay")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="casebook", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    dlq.add_parser(sub, os.environ.get("CASEBOOK_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    ob = sub.add_parser("outbox", help="outbox rows the broker refused (parked): list, hand back to the relay")
    ob.add_argument("--database-url", default=os.environ.get("CASEBOOK_DATABASE_URL", ""))
    osub = ob.add_subparsers(dest="outbox_command", required=True)
    osub.add_parser("parked", help="parked rows with their attempts and last error")
    rt = osub.add_parser("retry", help="let the relay try parked rows again (after raising the topic's limit)")
    rt.add_argument("ids", nargs="*")
    rt.add_argument("--all", action="store_true")
    ob.set_defaults(func=_outbox)
    for name, text in CLIENT_COMMANDS.items():  # listed in --help; main() hands them to casebook-client
        sub.add_parser(name, help=text, add_help=False)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLIENT_COMMANDS:
        try:
            from casebook_client import cli as client_cli
        except ImportError:
            print(f"casebook: `casebook {argv[0]}` needs the casebook-client package (`make install`)", file=sys.stderr)
            return 2
        return client_cli.main(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, LookupError) as exc:
        print(f"casebook: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
