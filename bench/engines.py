"""Engine throughput: ``hf`` at batch 1, 4 and 16; ``vllm`` versus ``hf``; a 2B-size model on CUDA.

* ``hf_batch_throughput``: the tiny Qwen2-VL on the CPU, 32 video requests (8 frames of
  112x112, greedy, 8 new tokens), samples per second at batch sizes 1, 4 and 16 and the ratio
  to batch 1, measured in one run (after one warm-up wave).
* ``vllm_vs_hf``: the same 32 text requests (greedy, 16 new tokens) through ``vllm`` (on
  ``tiny-qwen2-lm``, the tiny Qwen2-VL's language model: vLLM's CPU build runs text models)
  and ``hf`` (on ``tiny-qwen2-vl``, batch 16), samples per second and their ratio; skipped
  with the reason when vLLM is not installed.
* ``hf_cuda_2b``: only where CUDA is present: a randomly initialised model of Qwen2-VL-2B's
  size (its text and vision dimensions, bf16) built in a temporary folder, samples per second
  at batch 1 and 16.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import emit
from harness.engines.base import Message, Request, SamplingParams, VideoPart

N_REQUESTS = 32


def video_requests(n: int, frames: int = 8, size: int = 112, new_tokens: int = 8,
                   ) -> list[Request]:
    rng = np.random.default_rng(0)
    sp = SamplingParams(max_new_tokens=new_tokens, temperature=0.0)
    return [Request((Message.user(VideoPart(rng.integers(0, 256, (frames, size, size, 3),
                                                         dtype=np.uint8), fps=2.0),
                                  f"Is anything abnormal in clip {i}? Answer yes or no."),),
                    sp, request_id=str(i)) for i in range(n)]


def text_requests(n: int, new_tokens: int = 16) -> list[Request]:
    sp = SamplingParams(max_new_tokens=new_tokens, temperature=0.0)
    return [Request((Message.user(f"Describe scene number {i} of a street camera."),), sp,
                    request_id=str(i)) for i in range(n)]


def samples_per_second(engine: Any, requests: list[Request], batch_size: int,
                       repeats: int = 3) -> float:
    """Best of ``repeats`` timed waves after one warm-up (the best is the least disturbed by
    other load on the machine)."""
    engine.batch_size = batch_size
    engine.generate(requests[:batch_size])  # warm-up at this batch size
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine.generate(requests)
        best = max(best, len(requests) / (time.perf_counter() - t0))
    return best


def hf_batch_throughput() -> None:
    from harness.engines.hf import HFEngine

    engine = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=1)
    reqs = video_requests(N_REQUESTS)
    base = None
    for b in (1, 4, 16):
        sps = samples_per_second(engine, reqs, b)
        base = base or sps
        emit(f"hf_tiny_batch{b}_samples_per_s", sps, "samples/s", "> batch 1" if b > 1 else "",
             sps > base if b > 1 else None, ratio_to_batch1=round(sps / base, 3))
    engine.close()


def vllm_vs_hf() -> None:
    try:
        from harness.engines.vllm import VLLMEngine
    except ImportError as exc:
        emit("vllm_vs_hf_tiny_ratio", 0.0, "ratio", "> 1", None, skipped=f"vllm: {exc}")
        return
    from harness.engines.hf import HFEngine

    reqs = text_requests(N_REQUESTS)
    hf = HFEngine(model="tiny-qwen2-vl", device="cpu", dtype="float32", batch_size=16)
    hf_sps = samples_per_second(hf, reqs, 16)
    hf.close()
    try:
        # vLLM's CPU build cannot load Qwen2-VL (its vision code needs torchvision):
        # tiny-qwen2-lm holds exactly tiny-qwen2-vl's language model, so the text work is equal
        vl = VLLMEngine(model="tiny-qwen2-lm", device="cpu", dtype="float32",
                        max_model_len=1024)
        vl.generate(reqs[:2])  # start-up and warm-up
        t0 = time.perf_counter()
        vl.generate(reqs)
        vl_sps = len(reqs) / (time.perf_counter() - t0)
        vl.close()
    except Exception as exc:  # report why the comparison could not run, keep the others
        emit("vllm_vs_hf_tiny_ratio", 0.0, "ratio", "> 1", None, skipped=f"vllm: {exc}")
        return
    emit("vllm_vs_hf_tiny_ratio", vl_sps / hf_sps, "ratio", "> 1", vl_sps > hf_sps,
         vllm_samples_per_s=round(vl_sps, 3), hf_samples_per_s=round(hf_sps, 3))


def write_qwen2_vl_2b_size(out: Path) -> Path:
    """A random-init model directory with Qwen2-VL-2B's dimensions and our tokenizer."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from harness.models.loader import resolve_model

    tiny = Path(resolve_model("tiny-qwen2-vl").path)
    cfg = Qwen2VLConfig.from_pretrained(tiny)
    text = cfg.text_config
    for k, v in dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                     num_attention_heads=12, num_key_value_heads=2, vocab_size=151936).items():
        setattr(text, k, v)
    text.rope_parameters = {**text.rope_parameters, "mrope_section": [16, 24, 24]}
    vis = cfg.vision_config
    for k, v in dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16,
                     mlp_ratio=4).items():
        setattr(vis, k, v)
    with torch.device("cuda"):
        model = Qwen2VLForConditionalGeneration(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    for f in tiny.iterdir():
        if f.suffix in (".json", ".jinja") and f.name not in ("config.json",
                                                             "generation_config.json"):
            (out / f.name).write_bytes(f.read_bytes())
    return out


def hf_cuda_2b() -> None:
    import torch

    if not torch.cuda.is_available():
        emit("hf_cuda_qwen2vl2b_batch16_ratio", 0.0, "ratio", "> 1", None,
             skipped="no CUDA device")
        return
    from harness.engines.hf import HFEngine

    with tempfile.TemporaryDirectory() as tmp:
        path = write_qwen2_vl_2b_size(Path(tmp) / "qwen2-vl-2b-size")
        engine = HFEngine(model=str(path), device="cuda", dtype="bfloat16", batch_size=1)
        reqs = video_requests(N_REQUESTS, frames=8, size=448, new_tokens=16)
        s1 = samples_per_second(engine, reqs, 1)
        s16 = samples_per_second(engine, reqs, 16)
        engine.close()
    emit("hf_cuda_qwen2vl2b_batch1_samples_per_s", s1, "samples/s", "", None,
         device=torch.cuda.get_device_name(0))
    emit("hf_cuda_qwen2vl2b_batch16_ratio", s16 / s1, "ratio", "> 1", s16 > s1,
         batch16_samples_per_s=round(s16, 3))


def main() -> None:
    hf_batch_throughput()
    vllm_vs_hf()
    hf_cuda_2b()


if __name__ == "__main__":
    main()
