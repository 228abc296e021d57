"""The ``hf`` engine: Hugging Face transformers models run in-process (CPU or one GPU).

Families: Qwen2-VL, Qwen2.5-VL, transformers-native InternVL, and text-only causal LMs
(family ``text``: Qwen2/3, Llama, Mistral, Phi-3, Gemma 2/3, ...; see
:mod:`harness.models.loader`); models load offline only. With no model the engine uses the
random ``tiny-qwen2-vl``, which checks the plumbing and is never a benchmark
(``engine.resolved.is_tiny``); ``tiny-qwen2-lm`` is its text-only counterpart.

Conventions (beyond :mod:`harness.engines.base`):

* requests are split into rows (one per completion; a greedy request with ``n > 1`` is decoded
  once and copied), rows are sorted by prompt length and decoded in chunks of ``batch_size``
  with left padding; results do not depend on the chunking (same tokens, log-probs equal up
  to float rounding: tested on CPU float32; in bfloat16 on GPU, padding changes kernel shapes
  and can move log-probs by more, so near-tied greedy choices may differ);
* the sampling seed of request ``i`` in a ``generate`` call is ``sampling.seed`` if set, else
  ``engine seed + i``; completion ``j`` uses ``seed * 1_000_003 + j``;
* ``token_logprobs``/``top_logprobs`` are filled only when ``sampling.logprobs`` is set (0:
  chosen token only) and come from the raw model distribution (not divided by the
  temperature, not top-p truncated). ``top_logprobs`` keys are decoded token texts; tokens
  decoding to the same text keep the best log-prob; the chosen token's text is always present;
  dicts are ordered by log-prob, best first;
* ``token_ids`` include a final EOS token; ``text`` is decoded without special tokens and cut
  before the first stop string;
* ``max_pixels`` caps H*W of every Qwen image/video frame (default: the model's preprocessor
  config, video frames at most 768*28*28); InternVL uses its processor's fixed tile size;
* per-request LoRA (``Request.lora``: in-memory tensors in either layout of
  :mod:`harness.engines.lora_export`, or a PEFT directory) is applied functionally with
  :class:`harness.models.lora.PerSampleLoRA`: the backbone's weights are never merged or copied,
  and one decoding batch mixes requests with different adapters (or none). Adapter module names
  are the model's own; names from another transformers version (``model.layers.0...`` for
  ``model.language_model.layers.0...``) are matched by their ``layers.N...`` suffix. Vision-tower
  modules are dropped (as the vllm engine does);
* ``sampling.allowed_tokens`` constrains decoding (see :mod:`harness.engines.base`);
* text-only models: ``capabilities`` (an instance attribute) has no video, images, embeddings
  or visual tokens; a request with an image/video part, :meth:`~HFEngine.embed_frames` and
  :meth:`~HFEngine.visual_tokens` raise :class:`EngineError`. Decoding is the same loop with
  plain 1-D positions; LoRA applies to the decoder layers' projections as for the VLMs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    EngineError,
    LoRARef,
    Request,
    Response,
)
from harness.engines.hf_lora import Adapter, parse_adapter
from harness.engines.preprocess import QwenVisionSpec, qwen_video
from harness.models.decode import DecodeResult, DecodeRow, generate_batch
from harness.models.loader import LoadedModel, load_model, resolve_model
from harness.models.lora import (
    LoraTarget,
    PerSampleLoRA,
    find_targets,
    stack_adapters,
)
from harness.models.prompt import PromptEncoder

_SEED_MIX = 1_000_003
class HFEngine(Engine):
    """Transformers in-process: batched, CPU or CUDA, fp32 or bf16, token log-probabilities.

    See the module docstring for the conventions.
    """

    name = "hf"
    capabilities = EngineCapabilities(
        logprobs=True, lora=True, video=True, images=True, embeddings=True, visual_tokens=True
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
        **_: Any,
    ) -> None:
        if batch_size < 1:
            raise EngineError(f"batch_size must be >= 1, got {batch_size}")
        self.resolved = resolve_model(model)
        self.loaded: LoadedModel = load_model(
            self.resolved, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        self.batch_size = batch_size
        self.seed = seed
        self.max_pixels = max_pixels
        self.spec = QwenVisionSpec.from_model_dir(self.resolved.path, max_pixels)
        lm = self.loaded
        if self.resolved.family == "text":
            self.capabilities = self._text_capabilities()
        self.encoder = PromptEncoder(
            family=self.resolved.family,
            tokenizer=lm.tokenizer,
            chat_template=lm.chat_template,
            config=lm.model.config,
            vision_spec=self.spec,
            image_processor=lm.extras.get("image_processor"),
            image_seq_length=int(lm.extras.get("image_seq_length", 256)),
            model_id=str(self.resolved.id),
        )
        self.pad_id, self.eos_ids = self._special_ids()
        self._token_text: dict[int, str] = {}

    # -- setup ----------------------------------------------------------------------------------
    def _text_capabilities(self) -> EngineCapabilities:
        """A text-only model: log-probs, LoRA iff its Linear projections are adaptable."""
        try:
            lora = bool(self.lora_targets())
        except ValueError:
            lora = False
        return EngineCapabilities(logprobs=True, lora=lora, video=False, images=False,
                                  embeddings=False, visual_tokens=False)

    def _require_vision(self, what: str) -> None:
        if self.resolved.family == "text":
            raise EngineError(f"{what}: model {self.resolved.id!r} is text-only (family "
                              "'text') and has no vision tower")

    def _special_ids(self) -> tuple[int, set[int]]:
        tok, model = self.loaded.tokenizer, self.loaded.model
        eos: set[int] = set()
        for src in (getattr(model, "generation_config", None), model.config.get_text_config()):
            val = getattr(src, "eos_token_id", None) if src is not None else None
            if val is not None:
                eos.update([val] if isinstance(val, int) else list(val))
        if tok.eos_token_id is not None:
            eos.add(int(tok.eos_token_id))
        im_end = tok.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != tok.unk_token_id:
            eos.add(im_end)
        pad = tok.pad_token_id
        if pad is None:
            pad = min(eos) if eos else 0
        return int(pad), eos

    # -- generation -----------------------------------------------------------------------------
    def _decode(self, ids: list[int]) -> str:
        return str(self.loaded.tokenizer.decode(ids, skip_special_tokens=True))

    def _text_of(self, token_id: int) -> str:
        if token_id not in self._token_text:
            self._token_text[token_id] = str(self.loaded.tokenizer.decode([token_id]))
        return self._token_text[token_id]

    def _target_ids(self, texts: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The texts of ``texts`` that encode to exactly one token, and those token ids."""
        cache: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[int, ...]]]
        cache = self.__dict__.setdefault("_target_cache", {})
        if texts in cache:
            return cache[texts]
        keep: list[tuple[str, int]] = []
        for text in texts:
            ids = self.loaded.tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == 1:
                keep.append((text, int(ids[0])))
        cache[texts] = (tuple(t for t, _ in keep), tuple(i for _, i in keep))
        return cache[texts]

    def _completion(self, res: DecodeResult, top_k: int | None,
                    targets: tuple[str, ...] = ()) -> Completion:
        text = self._decode(res.token_ids)
        if res.stop_index is not None:
            text = text[: res.stop_index]
        tops: list[dict[str, float]] = []
        if top_k is not None:
            steps = res.top or [[] for _ in res.token_ids]  # top_k == 0: chosen token only
            for tok, step_top in zip(res.token_ids, steps, strict=True):
                d: dict[str, float] = {}
                for tid, lp in step_top:
                    d.setdefault(self._text_of(tid), lp)
                chosen = self._text_of(tok)
                lp_chosen = res.token_logprobs[len(tops)]
                d[chosen] = max(d.get(chosen, lp_chosen), lp_chosen)
                tops.append(dict(sorted(d.items(), key=lambda kv: -kv[1])))
        return Completion(
            text=text,
            token_ids=list(res.token_ids),
            token_logprobs=list(res.token_logprobs) if top_k is not None else [],
            top_logprobs=tops,
            target_logprobs=[dict(zip(targets, lps, strict=True)) for lps in res.targets],
            finish_reason=res.finish_reason,
        )

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Batched generation; one :class:`Response` per request, in order."""
        rows: list[DecodeRow] = []
        owners: list[int] = []  # request index of each row
        adapters: dict[str, Adapter] = {}
        sources: dict[str, LoRARef] = {}
        for i, req in enumerate(requests):
            ref = req.lora
            if ref is not None and ref.name not in adapters:
                adapters[ref.name], sources[ref.name] = self._adapter(ref), ref
            elif ref is not None and (sources[ref.name].tensors is not ref.tensors
                                      or sources[ref.name].path != ref.path):
                raise EngineError(f"LoRA name {ref.name!r} is used for two different adapters "
                                  "in one call; names must be unique per adapter")
            sp = req.sampling
            if sp.n < 1:
                raise EngineError(f"sampling.n must be >= 1, got {sp.n}")
            prompt = self.encoder.encode(req)
            _, target_ids = self._target_ids(tuple(sp.target_tokens))
            allowed_ids = self.allowed_ids(tuple(sp.allowed_tokens))
            base_seed = sp.seed if sp.seed is not None else self.seed + i
            n_rows = 1 if sp.temperature <= 0 else sp.n
            for j in range(n_rows):
                rows.append(
                    DecodeRow(
                        prompt=prompt,
                        max_new_tokens=sp.max_new_tokens,
                        temperature=max(sp.temperature, 0.0),
                        top_p=sp.top_p,
                        seed=(base_seed * _SEED_MIX + j) % (2**63 - 1),
                        top_k=sp.logprobs or 0,
                        stop=tuple(sp.stop),
                        target_ids=target_ids,
                        allowed_ids=allowed_ids,
                    )
                )
                owners.append(i)
        refs = [requests[o].lora for o in owners]
        row_adapters = [None if ref is None else adapters[ref.name] for ref in refs]
        results = self._run_rows(rows, row_adapters)
        per_request: list[list[Completion]] = [[] for _ in requests]
        for owner, res in zip(owners, results, strict=True):
            sp = requests[owner].sampling
            targets, _ = self._target_ids(tuple(sp.target_tokens))
            per_request[owner].append(self._completion(res, sp.logprobs, targets))
        responses = []
        for req, comps in zip(requests, per_request, strict=True):
            if req.sampling.temperature <= 0 and req.sampling.n > 1:
                comps = [comps[0].copy() for _ in range(req.sampling.n)]
            responses.append(Response(req.request_id, comps))
        return responses

    def allowed_ids(self, texts: tuple[str, ...]) -> tuple[int, ...]:
        """Token ids of ``allowed_tokens``; each text must be exactly one token."""
        if not texts:
            return ()
        kept, ids = self._target_ids(texts)
        if len(kept) != len(texts):
            bad = [t for t in texts if t not in kept]
            raise EngineError(f"allowed_tokens {bad} do not encode to exactly one token")
        return tuple(sorted(set(ids)))

    # -- LoRA -----------------------------------------------------------------------------------
    def lora_targets(self) -> list[LoraTarget]:
        """The language model's adaptable Linear modules (see :mod:`harness.models.lora`)."""
        if "_lora_targets" not in self.__dict__:
            self._lora_targets = find_targets(self.loaded.model)
        return self._lora_targets

    def _adapter(self, ref: LoRARef) -> Adapter:
        return parse_adapter(ref, self.lora_targets(), str(self.resolved.id))

    def _run_rows(self, rows: list[DecodeRow], adapters: list[Adapter | None] | None = None
                  ) -> list[DecodeResult]:
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r].prompt))
        out: list[DecodeResult | None] = [None] * len(rows)
        lm = self.loaded
        adapters = adapters or [None] * len(rows)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                chunk_adapters = [adapters[r] for r in chunk]
                with self._lora_applied(chunk_adapters):
                    results = generate_batch(
                        lm.model, self.resolved.family, [rows[r] for r in chunk],
                        pad_id=self.pad_id, eos_ids=self.eos_ids, device=lm.device,
                        dtype=lm.dtype, decode_text=self._decode,
                    )  # fmt: skip
                for r, res in zip(chunk, results, strict=True):
                    out[r] = res
        return [r for r in out if r is not None]

    @contextmanager
    def _lora_applied(self, adapters: list[Adapter | None]) -> Iterator[None]:
        """Hooks the rows' adapters (stacked, rank-padded) for one decoding batch."""
        if all(a is None for a in adapters):
            yield
            return
        names = {n for a in adapters if a is not None for n in a[0]}
        targets = [t for t in self.lora_targets() if t.name in names]
        weights = stack_adapters([None if a is None else a[0] for a in adapters], targets,
                                 scales=[1.0 if a is None else a[1] for a in adapters],
                                 device=self.loaded.device, dtype=self.loaded.dtype)
        with PerSampleLoRA(self.loaded.model, targets).apply(weights):
            yield

    # -- embeddings -----------------------------------------------------------------------------
    def embed_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Vision-tower embedding per clip ``uint8 (T, H, W, 3)``: mean over all visual tokens
        (:meth:`visual_tokens`), L2-normalised. Returns ``float32 (B, D)``."""
        self._require_vision("embed_frames")
        lm = self.loaded
        vecs = [t.float().mean(dim=(0, 1)) for t in self.visual_tokens(clips)]
        if not vecs:
            return np.zeros((0, int(lm.model.config.get_text_config().hidden_size)), np.float32)
        emb = torch.stack(vecs)
        emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return emb.cpu().numpy().astype(np.float32)

    def visual_tokens(self, clips: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """The frozen vision tower's tokens per clip ``uint8 (T, H, W, 3)``, after the
        merger/projector (the language model's hidden size ``D``), as ``(groups, tokens per
        group, D)``: Qwen ``(T/2, h * w / 4, D)`` (temporal patches of 2 frames, the clip
        encoded as one video exactly as a prompt encodes it); InternVL ``(T, 256, D)``, each
        frame one tile. Model dtype, on the model's device, no graph."""
        self._require_vision("visual_tokens")
        out: list[torch.Tensor] = []
        with torch.inference_mode():
            for start in range(0, len(clips), self.batch_size):
                chunk = [np.asarray(c) for c in clips[start : start + self.batch_size]]
                out.extend(self._visual_chunk(chunk))
        return [t.clone() for t in out]  # plain tensors, usable outside inference mode

    def _visual_chunk(self, clips: list[np.ndarray]) -> list[torch.Tensor]:
        lm = self.loaded
        if self.resolved.family == "internvl":
            out = []
            for clip in clips:
                pv, _ = self.encoder.internvl_pixels(list(clip), crop=False)
                x = torch.from_numpy(pv).to(device=lm.device, dtype=lm.dtype)
                feats = lm.model.get_image_features(pixel_values=x, return_dict=True)
                out.append(feats.pooler_output)
            return out
        vis = [qwen_video(c, self.spec) for c in clips]
        pixels = torch.from_numpy(np.concatenate([v.pixel_values for v in vis]))
        grid = torch.tensor([v.grid_thw for v in vis], device=lm.device)
        feats = lm.model.get_video_features(
            pixels.to(device=lm.device, dtype=lm.dtype), grid, return_dict=True
        )
        return [f.reshape(v.grid_thw[0], -1, f.shape[-1])
                for f, v in zip(feats.pooler_output, vis, strict=True)]

    # -- bookkeeping ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"engine": self.name, **self.loaded.describe()}
        d.update(batch_size=self.batch_size, max_pixels=self.max_pixels, seed=self.seed)
        return d

    def close(self) -> None:
        model = getattr(self, "loaded", None)
        if model is not None:
            del self.loaded
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

