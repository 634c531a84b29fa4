"""A client of one ComfyUI worker's own HTTP API (`/prompt`, `/history/{id}`, `/view`,
`/upload/image`, `/queue`, `/interrupt`, `/system_stats`) and its `/ws` progress feed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets

from gpu_hub.errors import GpuUnavailable


class WorkerFailed(Exception):
    """The worker is unreachable, hung, or failed the prompt; ``retry`` says whether another
    worker may succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class ComfyWorker:
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise WorkerFailed(f"{self.url} unreachable: {type(exc).__name__}",
                               retry=True) from exc
        if response.status_code >= 500:
            raise WorkerFailed(f"{self.url}{path} answered {response.status_code}", retry=True)
        return response

    async def system_stats(self) -> dict[str, Any]:
        response = await self._call("GET", "/system_stats")
        stats: dict[str, Any] = response.json()
        return stats

    async def queue_depth(self) -> int:
        """Prompts running or pending on the worker."""
        body = (await self._call("GET", "/queue")).json()
        return len(body.get("queue_running", [])) + len(body.get("queue_pending", []))

    async def upload_image(self, data: bytes, name: str) -> str:
        response = await self._call(
            "POST", "/upload/image", files={"image": (name, data, "image/png")},
            data={"overwrite": "true", "type": "input"})
        if response.status_code != 200:
            raise WorkerFailed(f"upload refused ({response.status_code})", retry=False)
        body = response.json()
        return f"{body['subfolder']}/{body['name']}" if body.get("subfolder") else body["name"]

    async def submit(self, workflow: dict[str, Any], client_id: str) -> str:
        response = await self._call("POST", "/prompt",
                                    json={"prompt": workflow, "client_id": client_id})
        if response.status_code != 200:
            raise WorkerFailed(f"workflow refused: {response.text[:300]}", retry=False)
        prompt_id: str = response.json()["prompt_id"]
        return prompt_id

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        body = (await self._call("GET", f"/history/{prompt_id}")).json()
        entry: dict[str, Any] | None = body.get(prompt_id)
        return entry

    async def view(self, image: dict[str, Any]) -> bytes:
        response = await self._call("GET", "/view", params={
            "filename": image["filename"], "subfolder": image.get("subfolder", ""),
            "type": image.get("type", "output")})
        if response.status_code != 200:
            raise WorkerFailed(f"result image missing ({response.status_code})", retry=True)
        return response.content

    async def interrupt(self, prompt_id: str) -> None:
        """Stop ``prompt_id`` whether running or still queued (best effort)."""
        try:
            await self.http.post("/queue", json={"delete": [prompt_id]})
            await self.http.post("/interrupt", json={"prompt_id": prompt_id})
        except httpx.HTTPError:
            pass

    async def run(self, workflow: dict[str, Any], *, stall_s: float,
                  progress: Callable[[float], Awaitable[None]]) -> bytes:
        """Run ``workflow`` to completion, reporting progress from the websocket; the first
        output image's bytes. No message for ``stall_s`` means the worker hung."""
        client_id = uuid.uuid4().hex
        ws_url = "ws" + self.url[4:] + f"/ws?clientId={client_id}"
        try:
            async with websockets.connect(ws_url, max_size=None, open_timeout=stall_s,
                                          close_timeout=1) as ws:
                prompt_id = await self.submit(workflow, client_id)
                try:
                    await self._follow(ws, prompt_id, stall_s, progress)
                except BaseException:
                    await self.interrupt(prompt_id)
                    raise
        except (OSError, websockets.WebSocketException) as exc:
            raise WorkerFailed(f"{self.url} connection lost: {type(exc).__name__}",
                               retry=True) from exc
        entry = await self.history(prompt_id)
        if entry is None:
            raise WorkerFailed(f"{self.url} finished {prompt_id} without a history entry",
                               retry=True)
        for output in entry.get("outputs", {}).values():
            for image in output.get("images", []):
                return await self.view(image)
        raise WorkerFailed("the workflow produced no image", retry=False)

    async def _follow(self, ws: Any, prompt_id: str, stall_s: float,
                      progress: Callable[[float], Awaitable[None]]) -> None:
        while True:
            try:
                frame = await asyncio.wait_for(ws.recv(), stall_s)
            except TimeoutError:
                raise WorkerFailed(f"{self.url} made no progress for {stall_s:.0f} s",
                                   retry=True) from None
            if isinstance(frame, bytes):
                continue  # preview images
            message = json.loads(frame)
            data = message.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            kind = message.get("type")
            if kind == "progress" and data.get("max"):
                await progress(0.05 + 0.9 * data["value"] / data["max"])
            elif kind == "execution_error":
                raise WorkerFailed(f"workflow failed: {data.get('exception_message', '')}",
                                   retry=False)
            elif kind == "execution_interrupted":
                raise WorkerFailed(f"{self.url} interrupted the prompt", retry=True)
            elif kind == "execution_success" or (
                    kind == "executing" and data.get("node") is None
                    and data.get("prompt_id") == prompt_id):
                return


def no_workers() -> GpuUnavailable:
    return GpuUnavailable("no ComfyUI worker is reachable; check COMFYUI_URLS and the GPU box")
