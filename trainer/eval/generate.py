"""Generation backends: transformers (batched, CPU or one GPU) and vLLM (optional, multi-GPU).

Both apply the model's own chat template through its processor, feed images at the stage's resolution
(`Resolution`: the processor's min/max pixel bounds, as in training) and decode greedily by default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from medmo_train.data import Resolution

from .benchmarks import Item


@dataclass
class GenerationSettings:
    max_new_tokens: int = 1024  # MedEvalKit's default
    temperature: float = 0.0  # 0 = greedy
    batch_size: int = 8

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "do_sample": self.temperature > 0}


def stage_resolution(stage: int, min_pixels: int | None = None, max_pixels: int | None = None) -> Resolution:
    """The stage spec's image bounds (manifests/stageN.yaml), optionally overridden."""
    from importlib.resources import files

    import yaml

    spec = yaml.safe_load((files("medmo_data.manifests") / f"stage{stage}.yaml").read_text(encoding="utf-8"))
    image = spec.get("image") or {}
    lo = int(min_pixels or image.get("min_pixels", 32 * 32))
    hi = int(max_pixels or image.get("max_pixels", 1280 * 1280))
    return Resolution(min_pixels=lo, max_pixels=hi)


def _rgb(images: list[Any]) -> list[Any]:
    return [im.convert("RGB") if getattr(im, "mode", "RGB") != "RGB" else im for im in images]


class TransformersBackend:
    """`AutoModelForImageTextToText` + `AutoProcessor`; left-padded batches, `generate` greedy."""

    name = "transformers"

    def __init__(self, model: str, resolution: Resolution, settings: GenerationSettings, device: str | None = None):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.settings = settings
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoProcessor.from_pretrained(model)
        self.processor.tokenizer.padding_side = "left"
        ip = getattr(self.processor, "image_processor", None)
        if ip is not None:
            ip.size = {"shortest_edge": resolution.min_pixels, "longest_edge": resolution.max_pixels}
        dtype = torch.float32 if self.device == "cpu" else torch.bfloat16  # CPU bf16 matmuls are slow
        self.model = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype).to(self.device).eval()
        self.resolution = resolution

    def generate(self, batch: list[Item]) -> list[str]:
        import torch

        texts = [self.processor.apply_chat_template(it.messages, tokenize=False, add_generation_prompt=True)
                 for it in batch]
        images = [im for it in batch for im in _rgb(it.images)]
        inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        inputs = inputs.to(self.device)
        s = self.settings
        kw: dict[str, Any] = {"max_new_tokens": s.max_new_tokens, "do_sample": s.temperature > 0}
        if s.temperature > 0:
            kw["temperature"] = s.temperature
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kw)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]


class VLLMBackend:
    """vLLM offline inference (tensor parallel over the visible GPUs); same template and pixel bounds."""

    name = "vllm"

    def __init__(self, model: str, resolution: Resolution, settings: GenerationSettings, max_images: int = 8):
        import torch
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        self.settings = settings
        self.processor = AutoProcessor.from_pretrained(model)
        self.llm = LLM(model=model, tensor_parallel_size=max(1, torch.cuda.device_count()),
                       limit_mm_per_prompt={"image": max_images},
                       mm_processor_kwargs={"min_pixels": resolution.min_pixels, "max_pixels": resolution.max_pixels})
        self.params = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_new_tokens)

    def generate(self, batch: list[Item]) -> list[str]:
        reqs = []
        for it in batch:
            text = self.processor.apply_chat_template(it.messages, tokenize=False, add_generation_prompt=True)
            req: dict[str, Any] = {"prompt": text}
            if it.images:
                req["multi_modal_data"] = {"image": _rgb(it.images)}
            reqs.append(req)
        outs = self.llm.generate(reqs, self.params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outs]


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None
