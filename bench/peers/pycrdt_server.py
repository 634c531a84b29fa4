"""pycrdt-websocket with its SQLite store: ``python pycrdt_server.py PORT DB``."""

import asyncio
import sys

from pycrdt.store import SQLiteYStore
from pycrdt.websocket import WebsocketServer, YRoom
from websockets.asyncio.server import serve


class Channel:
    """pycrdt-websocket's channel over a `websockets` connection."""

    def __init__(self, ws):
        self._ws = ws
        self.path = ws.request.path

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self._ws.recv()
        except Exception:
            raise StopAsyncIteration() from None

    async def send(self, message):
        await self._ws.send(message)

    async def recv(self):
        return await self._ws.recv()


class StoredServer(WebsocketServer):
    """Every room persisted in one SQLite file, as the store's docs describe."""

    def __init__(self, db_path):
        super().__init__(rooms_ready=True, auto_clean_rooms=False)
        self._store = type("Store", (SQLiteYStore,), {"db_path": db_path})

    async def get_room(self, name):
        if name not in self.rooms:
            self.rooms[name] = YRoom(ready=True, ystore=self._store(path=name), log=self.log)
        room = self.rooms[name]
        await self.start_room(room)
        return room


async def main(port, db_path):
    async with StoredServer(db_path) as server:
        # make the store's tables once before clients come: rooms that initialise the same
        # file at the same moment race on CREATE TABLE and then store nothing
        warm = await server.get_room("/warm-up")
        await warm.ystore.started.wait()
        await warm.ystore.db_initialized.wait()
        async with serve(lambda ws: server.serve(Channel(ws)), "127.0.0.1", port,
                         max_size=None):
            print("ready", flush=True)
            await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
