"""A ComfyUI stand-in speaking its HTTP API (`/prompt`, `/history/{id}`, `/view`,
`/upload/image`, `/queue`, `/interrupt`, `/system_stats`) and `/ws` progress messages. It runs
one prompt at a time in steps; a test makes it hang (accept, then never progress) or die."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response


def tiny_png(shade: int = 128) -> bytes:
    """A real 4×4 grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes([shade]) * 4 for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class ComfyStandIn:
    name: str = "gpu0"
    steps: int = 4
    step_s: float = 0.02
    hang: bool = False
    """Accept prompts, announce them, then never progress (a hung GPU worker)."""
    fail_prompts: bool = False
    """Answer /system_stats and /queue but fail every prompt with an execution error."""
    prompts: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    interrupted: list[str] = field(default_factory=list)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, bytes] = field(default_factory=dict)
    pending: list[tuple[int, str, dict[str, Any], str]] = field(default_factory=list)
    running: tuple[int, str, dict[str, Any], str] | None = None
    sockets: dict[str, WebSocket] = field(default_factory=dict)
    _number: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _cancel_running: asyncio.Event = field(default_factory=asyncio.Event)

    async def _send(self, client_id: str, kind: str, data: dict[str, Any]) -> None:
        ws = self.sockets.get(client_id)
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.send_json({"type": kind, "data": data})

    async def execute(self) -> None:
        """The worker's execution loop (run as a task by `serve_comfy`)."""
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            self.running = self.pending.pop(0)
            number, prompt_id, prompt, client_id = self.running
            self._cancel_running.clear()
            await self._send(client_id, "execution_start", {"prompt_id": prompt_id})
            if self.hang:
                await self._cancel_running.wait()
            interrupted = self._cancel_running.is_set()
            for step in range(self.steps):
                if interrupted or self._cancel_running.is_set():
                    interrupted = True
                    break
                await asyncio.sleep(self.step_s)
                await self._send(client_id, "progress", {"value": step + 1, "max": self.steps,
                                                         "prompt_id": prompt_id, "node": "6"})
            if interrupted:
                await self._send(client_id, "execution_interrupted", {"prompt_id": prompt_id})
            elif self.fail_prompts:
                await self._send(client_id, "execution_error", {
                    "prompt_id": prompt_id, "exception_message": "CUDA out of memory"})
            else:
                filename = f"dream_weaver_{number:05d}_.png"
                self.outputs[filename] = tiny_png(number % 200)
                self.history[prompt_id] = {
                    "prompt": [number, prompt_id, prompt, {"client_id": client_id}, ["8"]],
                    "outputs": {"8": {"images": [{"filename": filename, "subfolder": "",
                                                  "type": "output"}]}},
                    "status": {"status_str": "success", "completed": True, "messages": []}}
                await self._send(client_id, "executed", {"node": "8", "prompt_id": prompt_id,
                                                         "output": self.history[prompt_id][
                                                             "outputs"]["8"]})
                await self._send(client_id, "executing", {"node": None,
                                                          "prompt_id": prompt_id})
            self.running = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/system_stats")
        async def system_stats() -> dict[str, Any]:
            return {"system": {"os": "posix", "comfyui_version": "0.3.40",
                               "python_version": "3.12", "ram_total": 2**36,
                               "ram_free": 2**35},
                    "devices": [{"name": f"cuda:0 NVIDIA L4 ({self.name})", "type": "cuda",
                                 "index": 0, "vram_total": 24 * 2**30,
                                 "vram_free": 20 * 2**30}]}

        @app.get("/queue")
        async def queue() -> dict[str, Any]:
            def entry(e: tuple[int, str, dict[str, Any], str]) -> list[Any]:
                return [e[0], e[1], e[2], {"client_id": e[3]}, ["8"]]
            return {"queue_running": [entry(self.running)] if self.running else [],
                    "queue_pending": [entry(e) for e in self.pending]}

        @app.post("/queue")
        async def edit_queue(request: Request) -> Response:
            body = await request.json()
            doomed = set(body.get("delete", []))
            self.pending = [e for e in self.pending if e[1] not in doomed]
            return Response(status_code=200)

        @app.post("/interrupt")
        async def interrupt(request: Request) -> Response:
            body = await request.json() if await request.body() else {}
            target = body.get("prompt_id")
            if self.running and target in (None, self.running[1]):
                self.interrupted.append(self.running[1])
                self._cancel_running.set()
            return Response(status_code=200)

        @app.post("/upload/image")
        async def upload(image: Annotated[UploadFile, File()],
                         overwrite: Annotated[str, Form()] = "false",
                         type: Annotated[str, Form()] = "input") -> dict[str, str]:
            data = await image.read()
            self.uploads[image.filename or "upload.png"] = data
            return {"name": image.filename or "upload.png", "subfolder": "", "type": type}

        @app.post("/prompt")
        async def prompt(request: Request) -> JSONResponse:
            body = await request.json()
            graph = body.get("prompt")
            if not isinstance(graph, dict) or not graph:
                return JSONResponse({"error": {"type": "invalid_prompt",
                                               "message": "Cannot execute because no prompt"},
                                     "node_errors": {}}, status_code=400)
            image = next((n["inputs"]["image"] for n in graph.values()
                          if n.get("class_type") == "LoadImage"), None)
            if image is not None and image not in self.uploads:
                return JSONResponse({"error": {"type": "prompt_outputs_failed_validation",
                                               "message": f"Invalid image file: {image}"},
                                     "node_errors": {"2": {}}}, status_code=400)
            self._number += 1
            prompt_id = str(uuid.uuid4())
            self.prompts.append(graph)
            self.pending.append((self._number, prompt_id, graph, body.get("client_id", "")))
            self._wake.set()
            return JSONResponse({"prompt_id": prompt_id, "number": self._number,
                                 "node_errors": {}})

        @app.get("/history/{prompt_id}")
        async def history(prompt_id: str) -> dict[str, Any]:
            return {prompt_id: self.history[prompt_id]} if prompt_id in self.history else {}

        @app.get("/view")
        async def view(filename: str, subfolder: str = "", type: str = "output") -> Response:
            if filename not in self.outputs:
                return Response(status_code=404)
            return Response(self.outputs[filename], media_type="image/png")

        @app.websocket("/ws")
        async def ws(websocket: WebSocket) -> None:
            client_id = websocket.query_params.get("clientId") or uuid.uuid4().hex
            await websocket.accept()
            self.sockets[client_id] = websocket
            await websocket.send_json({"type": "status", "data": {
                "status": {"exec_info": {"queue_remaining": len(self.pending)}},
                "sid": client_id}})
            try:
                while True:
                    await websocket.receive_text()
            except WebSocketDisconnect:
                self.sockets.pop(client_id, None)

        return app
