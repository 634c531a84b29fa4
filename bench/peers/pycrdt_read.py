"""Read pycrdt-websocket's SQLite store back as its own API does: ``python pycrdt_read.py DB``.

Prints {document: [keys of map "m"]} as JSON, each document rebuilt with the store's
``apply_updates`` (checkpoints and the updates after them)."""

import json
import sqlite3
import sys

import anyio
from pycrdt import Doc, Map
from pycrdt.store import SQLiteYStore


async def main(db_path):
    with sqlite3.connect(db_path) as conn:
        paths = [row[0] for row in conn.execute("SELECT DISTINCT path FROM yupdates")]
    store_class = type("Store", (SQLiteYStore,), {"db_path": db_path})
    out = {}
    for path in paths:
        doc = Doc()
        async with store_class(path=path) as store:
            await store.apply_updates(doc)
        out[path.lstrip("/")] = sorted(doc.get("m", type=Map).keys())
    print(json.dumps(out))


anyio.run(main, sys.argv[1])
