"""Benchmark of comms ingest: WhatsApp webhooks stored by the hub, durably, beside the raw
insert rate of the same rows into PostgreSQL.

Run: ``.venv/bin/python bench/comms.py [--quick] [--messages 3000] [--senders 8]``.

A hub runs in this process on PostgreSQL (a database of its own on the ``DATABASE_URL`` server,
dropped afterwards, or a private server from `pgserver`). First one message from each of 200
phone numbers opens its conversation (not timed). Then ``--senders`` concurrent clients POST
signed WAHA ``message`` webhooks (from those numbers, one in fifty delivered twice) to
``/api/comms/webhooks/waha`` over real HTTP; each answer comes after the message's CRDT record
is committed to the log (HMAC check, JSON validation, duplicate check, thread lookup and person
link, the commit). Beside it: the same message rows inserted straight into a plain table with
asyncpg, one transaction per message, as many concurrent writers: the database's own rate for
this work. Writes bench/results/comms.*.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
from rich.console import Console
from rich.progress import Progress

from bench._common import create_database, drop_database, write_results
from comms.waha import sign
from core.ids import new_id
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings

PHONES = [f"9198{n:08d}" for n in range(200)]
RAW_TABLE = "bench_raw_comms_messages"


def _event(session: str, n: int) -> dict[str, Any]:
    phone = PHONES[n % len(PHONES)]
    return {"event": "message", "session": session, "payload": {
        "id": f"false_{phone}@c.us_{n:012X}", "timestamp": 1_780_000_000 + n,
        "from": f"{phone}@c.us", "fromMe": False, "body": f"Message {n}: is the 3BHK free?",
        "hasMedia": False}}


async def hub_run(url: str | None, messages: int, senders: int, console: Console
                  ) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="velocity-comms-bench-"))
    hub = Hub(HubSettings(database_url=url, data_dir=folder, sandbox_workers=1))
    tenant, secret = f"bench-{new_id()}", secrets.token_hex(16)
    channel, session = f"bench-{new_id()}", f"bench-{new_id()}"
    async with HubServer(hub, host="127.0.0.1", port=0) as server:
        await hub.accounts.ensure_tenant(tenant, "Bench")
        await hub.db.pool.execute(
            "INSERT INTO hub_comms_channels (channel_id, tenant_id, provider, account, base_url,"
            " api_key, webhook_secret, owner_id) VALUES ($1, $2, 'waha', $3, "
            "'http://127.0.0.1:9', 'k', $4, 'bench-broker')", channel, tenant, session, secret)
        endpoint = f"{server.url}/api/comms/webhooks/waha?channel={channel}"
        async with httpx.AsyncClient() as http:
            with console.status("opening a conversation with each number…"):
                for n in range(len(PHONES)):
                    body = json.dumps(_event(session, messages + n)).encode()
                    (await http.post(endpoint, content=body, headers={
                        "X-Webhook-Hmac": sign(secret, body)})).raise_for_status()
        bodies = [json.dumps(_event(session, n)).encode() for n in range(messages)]
        bodies += [bodies[n] for n in range(0, messages, 50)]  # duplicates
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        latencies: list[float] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("webhooks into the hub", total=len(bodies))

            async def sender(http: httpx.AsyncClient) -> None:
                while not queue.empty():
                    body = queue.get_nowait()
                    start = time.perf_counter()
                    r = await http.post(endpoint, content=body, headers={
                        "Content-Type": "application/json", "X-Webhook-Hmac": sign(secret, body),
                        "X-Webhook-Hmac-Algorithm": "sha512"})
                    r.raise_for_status()
                    latencies.append(time.perf_counter() - start)
                    progress.advance(task)

            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=senders)) as http:
                start = time.perf_counter()
                await asyncio.gather(*(sender(http) for _ in range(senders)))
                elapsed = time.perf_counter() - start
        stored = await hub.db.pool.fetchval(
            "SELECT count(*) FROM comms_messages WHERE tenant_id = $1", tenant) - len(PHONES)
        database_url = hub.database_url
    latencies.sort()
    return {"database_url": database_url, "webhooks": len(bodies), "stored": stored,
            "hub_messages_per_s": len(bodies) / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000}


async def raw_run(url: str, messages: int, senders: int) -> float:
    """The same rows, one transaction each, straight into a plain table."""
    pool = await asyncpg.create_pool(url, min_size=senders, max_size=senders)
    try:
        await pool.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        await pool.execute(
            f"CREATE TABLE {RAW_TABLE} (tenant_id text, id text, thread_id text, "
            "direction text, body text, status text, provider_message_id text, "
            "occurred_at timestamptz, PRIMARY KEY (tenant_id, id))")
        rows = [("bench", new_id(), PHONES[n % len(PHONES)], "inbound",
                 f"Message {n}: is the 3BHK free?", "received", f"false_{n:012X}",
                 time.time()) for n in range(messages)]
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        for row in rows:
            queue.put_nowait(row)

        async def writer() -> None:
            async with pool.acquire() as conn:
                while not queue.empty():
                    row = queue.get_nowait()
                    async with conn.transaction():
                        await conn.execute(
                            f"INSERT INTO {RAW_TABLE} VALUES ($1, $2, $3, $4, $5, $6, $7, "
                            "to_timestamp($8))", *row)

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(senders)))
        elapsed = time.perf_counter() - start
        await pool.execute(f"DROP TABLE {RAW_TABLE}")
        return messages / elapsed
    finally:
        await pool.close()




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 messages")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=8, help="concurrent webhook clients")
    args = parser.parse_args()
    messages = 300 if args.quick else args.messages
    console = Console()
    server_url = os.environ.get("DATABASE_URL")
    url = asyncio.run(create_database(server_url, "velocity_bench_comms")) if server_url else None
    try:
        hub = asyncio.run(hub_run(url, messages, args.senders, console))
        with console.status("raw asyncpg inserts of the same rows…"):
            raw = [asyncio.run(raw_run(hub["database_url"], messages, args.senders))
                   for _ in range(2)]
    finally:
        if server_url and url:
            asyncio.run(drop_database(server_url, url))
    raw_rate = sum(raw) / len(raw)
    ratio = hub["hub_messages_per_s"] / raw_rate
    figures = {**{k: v for k, v in hub.items() if k != "database_url"}, "messages": messages,
               "senders": args.senders, "raw_messages_per_s": raw_rate, "raw_runs": raw,
               "ratio": ratio}
    md = "\n".join([
        f"{messages} WAHA `message` webhooks (+{hub['webhooks'] - messages} duplicates) from "
        f"{len(PHONES)} numbers whose conversations are open, {args.senders} concurrent "
        "senders, the hub in the same process as the senders:", "",
        "| path | messages/s | answer p50 / p99 | vs raw |", "| --- | --- | --- | --- |",
        f"| hub webhook → CRDT record committed (HMAC, validation, dedup, thread, link) | "
        f"{hub['hub_messages_per_s']:,.0f} | {hub['p50_ms']:.1f} / {hub['p99_ms']:.1f} ms | "
        f"{ratio:.0%} |",
        f"| raw asyncpg insert of the same rows, one transaction each | {raw_rate:,.0f} "
        f"({', '.join(f'{r:,.0f}' for r in raw)}) | | 100% |", "",
        f"Stored {hub['stored']} messages for {messages} distinct ids (duplicates: one each)."])
    path = write_results("comms", figures, md)
    console.print(md)
    console.print(f"[dim]written to {path}[/dim]")
    if hub["stored"] != messages:
        raise SystemExit(f"stored {hub['stored']} messages for {messages} distinct ids")


if __name__ == "__main__":
    main()
