"""The hub's websockets compress large messages (bootstrap pages) and send small ones (live
edits, ACKs) uncompressed, and a device reads both on one connection."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode

from hub.ws_compression import COMPRESS_FROM_BYTES
from tests.hubkit import login, pair_device, running_hub

pytestmark = pytest.mark.anyio


class _Recording(PerMessageDeflate):
    """Client side permessage-deflate that notes, per data message, whether it came compressed
    and how long it was once read."""

    frames: list[tuple[bool, int]]

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        decoded = super().decode(frame, max_size=max_size)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.frames.append((frame.rsv1, len(decoded.data)))
        return decoded


class _RecordingFactory(ClientPerMessageDeflateFactory):
    def __init__(self, frames: list[tuple[bool, int]]) -> None:
        super().__init__(client_max_window_bits=True)
        self._frames = frames

    def process_response_params(self, params: Any, accepted_extensions: Any) -> _Recording:
        deflate = super().process_response_params(params, accepted_extensions)
        recording = _Recording(deflate.remote_no_context_takeover,
                               deflate.local_no_context_takeover,
                               deflate.remote_max_window_bits, deflate.local_max_window_bits,
                               deflate.compress_settings)
        recording.frames = self._frames
        return recording


async def test_large_messages_compressed_small_ones_plain_both_read() -> None:
    async with running_hub() as server:
        director = await login(server, "sales_director@t1.test")
        async with httpx.AsyncClient(base_url=server.url, headers=director) as http:
            ids = []
            for n in range(20):
                r = await http.post("/api/crm/contacts", json={"values": {
                    "full_name": f"Visitor {n}", "notes": "asked about the sea view " * 8}})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            frames: list[tuple[bool, int]] = []
            device = await pair_device(server, "sales_director@t1.test", "t1-sales_director",
                                       client_id=7001)
            await device.connect(extensions=[_RecordingFactory(frames)], compression=None)
            try:
                await device.wait_for(lambda: len(device.docs) == 20)
                r = await http.patch(f"/api/crm/client-data/{ids[0]}",
                                     json={"values": {"city": "Dubai Marina"}})
                assert r.status_code == 200, r.text
                await device.wait_for(
                    lambda: device.docs[f"people/{ids[0]}"].content().get("city")
                    == "Dubai Marina")
                long_notes = "second viewing, wants the corner unit " * 60
                r = await http.patch(f"/api/crm/client-data/{ids[1]}",
                                     json={"values": {"notes": long_notes}})
                assert r.status_code == 200, r.text
                await device.wait_for(
                    lambda: device.docs[f"people/{ids[1]}"].content().get("notes")
                    == long_notes)
            finally:
                await device.close()
    large = [compressed for compressed, size in frames if size >= COMPRESS_FROM_BYTES]
    small = [compressed for compressed, size in frames if size < COMPRESS_FROM_BYTES]
    assert len(large) >= 2 and all(large), frames  # the bootstrap page and the long notes
    assert small and not any(small), frames  # challenge, welcome, the city edit
