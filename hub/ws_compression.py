"""permessage-deflate for the hub's websockets, skipped for small messages.

A live edit or an ACK is a frame of a few hundred bytes sent to every reader of a document:
compressing each one cost the hub about a tenth of its event loop with fifty devices on one
record, for a few dozen bytes saved. Bootstrap pages and merged runs are large and compress
about five times, which a broker's iPad on a cellular link needs. RFC 7692 lets a sender send
any message uncompressed (its RSV1 bit clear), and every conforming client reads both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol
from websockets.typing import ExtensionParameter

COMPRESS_FROM_BYTES = 1024
"""Messages of at least this size are compressed; smaller ones go as they are."""


class LargeMessageDeflate(PerMessageDeflate):
    """permessage-deflate that sends a single-frame message under the threshold uncompressed
    (the compressor never sees it, so the shared context stays the same on both ends)."""

    def encode(self, frame: Frame) -> Frame:
        if frame.fin and frame.opcode is not Opcode.CONT and len(frame.data) < COMPRESS_FROM_BYTES:
            return frame
        return super().encode(frame)


class LargeMessageDeflateFactory(ServerPerMessageDeflateFactory):
    """Negotiates permessage-deflate as websockets does, with `LargeMessageDeflate`."""

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, deflate = super().process_request_params(params, accepted_extensions)
        return response, LargeMessageDeflate(
            deflate.remote_no_context_takeover, deflate.local_no_context_takeover,
            deflate.remote_max_window_bits, deflate.local_max_window_bits,
            deflate.compress_settings)


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol with `LargeMessageDeflateFactory` (same window and memory
    settings as uvicorn's own)."""

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.conn = ServerProtocol(
            extensions=[LargeMessageDeflateFactory(
                server_max_window_bits=12, client_max_window_bits=12,
                compress_settings={"memLevel": 5})],
            max_size=config.ws_max_size, logger=self.conn.logger)
