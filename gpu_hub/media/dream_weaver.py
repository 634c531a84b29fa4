"""Dream Weaver: a room photo + room type + style keywords → a staged render from a ComfyUI
worker (img2img), as a durable job with progress; the prompt is expanded by the LLM when the GPU
mode serves it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.errors import VelocityError
from core.identity import Principal, Role
from gpu_hub.errors import BadRequest, PayloadTooLarge
from gpu_hub.jobs import Job
from gpu_hub.llm.client import LlmRuntime
from gpu_hub.media.comfy import WorkerFailed
from gpu_hub.media.pool import ComfyPool
from gpu_hub.mode import ModeControl
from gpu_hub.runner import Progress, RetryElsewhere
from gpu_hub.settings import GpuSettings

ROOM_TYPES = ("living_room", "bedroom", "kitchen", "dining_room", "bathroom", "study",
              "balcony", "kids_room")
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
NEGATIVE = "blurry, distorted walls, warped windows, text, watermark, people, low quality"
EXPAND_TIMEOUT_S = 20.0


class DreamRequest(BaseModel):
    room_type: str
    style: str = Field(min_length=1, max_length=300)
    upload: str
    """The stored room photo, relative to the asset folder."""
    role: Role = Role.JUNIOR_BROKER
    seed: int = Field(0, ge=0, lt=2**32)


def check_photo(data: bytes, max_bytes: int) -> None:
    """A room photo must be a PNG or JPEG within the size limit (else 413 / 400)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"photo is {len(data)} bytes; the limit is {max_bytes} "
                              "(VELOCITY_DREAM_WEAVER_MAX_BYTES)")
    if not data.startswith((PNG, JPEG)):
        raise BadRequest("the photo must be a PNG or JPEG image", code="bad_image")


def template_prompt(room_type: str, style: str) -> str:
    room = room_type.replace("_", " ")
    return (f"photorealistic interior of a luxury {room}, {style}, staged with designer "
            "furniture, natural light, architectural photography, high detail")


def workflow(image_name: str, positive: str, seed: int, checkpoint: str) -> dict[str, Any]:
    """A ComfyUI API-format img2img graph: photo → VAE encode → KSampler → decode → save."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["1", 1]}},
        "6": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["4", 0], "negative": ["5", 0],
            "latent_image": ["3", 0], "seed": seed, "steps": 24, "cfg": 6.5,
            "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 0.62}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0],
                                                    "filename_prefix": "dream_weaver"}},
    }


def result_path(asset_dir: Path, job: Job) -> Path:
    return asset_dir / "dream_weaver" / job.tenant_id / f"{job.id}.png"


class DreamWeaverHandler:
    def __init__(self, pool: ComfyPool, llm: LlmRuntime, mode: ModeControl,
                 settings: GpuSettings) -> None:
        self.pool, self.llm, self.mode, self.settings = pool, llm, mode, settings

    async def _prompt(self, principal: Principal, request: DreamRequest) -> tuple[str, bool]:
        """The positive prompt, expanded by the LLM when it is served now; else a template."""
        base = template_prompt(request.room_type, request.style)
        if not self.llm.configured or not (await self.mode.state()).serves_llm:
            return base, False
        try:
            reply = await asyncio.wait_for(self.llm.chat(principal, [
                {"role": "system", "content": "Expand the interior-staging request into one "
                 "Stable Diffusion prompt of at most 60 words. Reply with the prompt only."},
                {"role": "user", "content": base}], purpose="dream_weaver_prompt",
                max_tokens=160), EXPAND_TIMEOUT_S)
        except (VelocityError, TimeoutError):
            return base, False
        text = reply.content.strip()
        return (text[:1000], True) if text else (base, False)

    async def __call__(self, job: Job, progress: Progress) -> dict[str, Any]:
        request = DreamRequest(**job.request)
        principal = Principal(job.tenant_id, job.user_id, request.role)
        photo = (self.settings.asset_dir / request.upload).read_bytes()
        positive, expanded = await self._prompt(principal, request)
        await progress(0.02)
        state = self.pool.pick()
        state.in_flight += 1
        try:
            name = await state.worker.upload_image(photo, f"{job.id}.png")
            png = await state.worker.run(
                workflow(name, positive, request.seed, self.settings.dream_weaver_checkpoint),
                stall_s=self.settings.comfy_timeout_s, progress=progress)
        except WorkerFailed as exc:
            if not exc.retry:
                raise BadRequest(str(exc), code="render_failed") from exc
            self.pool.mark_failed(state, str(exc), self.settings.comfy_timeout_s)
            raise RetryElsewhere(str(exc)) from exc
        finally:
            state.in_flight -= 1
        path = result_path(self.settings.asset_dir, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return {"prompt": positive, "prompt_expanded": expanded, "worker": state.worker.url,
                "bytes": len(png)}
