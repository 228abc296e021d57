"""A trainable VLM policy: the model itself (full fine-tuning) or a LoRA on its language model.

Shared by the methods that fine-tune the VLM they answer with (Vad-R1's SFT and AVA-GRPO,
Anom-π's iDPO). Both modes sample through the ``hf`` engine that holds the backbone, so
rollouts and evaluation run the same decoding code:

* ``mode="full"``: every weight of the model (vision tower included) is trained in place in the
  engine's model; the reference (GRPO's KL, DPO's
  ``pi_ref``) is a frozen copy taken when the policy is built or at
  :meth:`VLMPolicy.reset_reference`. A checkpoint is a complete model directory (weights plus
  the backbone's tokenizer, processor and chat-template files) that any engine loads with
  ``--model`` and that ``--checkpoint`` selects.
* ``mode="lora"``: one adapter ``A (r, in)``, ``B (out, r)`` on every language-model projection
  (:func:`harness.models.lora.find_targets`), applied functionally
  (:class:`harness.models.lora.PerSampleLoRA`, one row broadcast to the batch) and sent with
  each sampling request as in-memory tensors; ``B`` starts at zero, ``A`` uniform in
  ``+-1/sqrt(in)`` (PEFT's Kaiming-uniform bound with ``a = sqrt(5)``), scale ``alpha / r``.
  The reference is the backbone without the adapter (no copy). A checkpoint is a PEFT directory
  (:func:`harness.engines.lora_export.write_peft_dir`) that the ``hf`` and ``vllm`` engines load.

Every checkpoint holds a method's metadata file (``meta_file``, e.g. ``vad_r1.json``): format,
mode, backbone and what the method adds (prompt, training summary). :func:`read_policy_meta`
checks one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from harness.engines.base import LoRARef
from harness.engines.hf import HFEngine
from harness.models.lora import PerSampleLoRA, find_targets
from harness.models.prompt import EncodedPrompt
from harness.models.score import completion_logprobs
from harness.training import CheckpointError

MODES = ("full", "lora")
#: model-directory files copied from the backbone next to fine-tuned weights
_MODEL_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.json",
                "chat_template.jinja", "preprocessor_config.json", "video_preprocessor_config.json",
                "generation_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                "vad_eval_tiny.json", "added_tokens.json")


class VLMPolicy:
    """A trainable policy (module docstring). ``engine`` holds the model; subclasses name their
    checkpoint's ``format`` and ``meta_file`` and the ``label`` of their adapters."""

    format: str = "vad-eval/vlm-policy-v1"
    meta_file: str = "policy.json"
    label: str = "policy"

    def __init__(self, engine: HFEngine, mode: str = "full", rank: int = 16,
                 alpha: float | None = None, seed: int = 0, reference: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.engine, self.mode = engine, mode
        lm = engine.loaded
        self.model = lm.model
        self.weights: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.hooks: PerSampleLoRA | None = None
        self._ref: Any = None
        self._version = 0
        if mode == "full":
            for p in self.model.parameters():
                p.requires_grad_(True)
            if reference:
                self._ref = copy.deepcopy(self.model).eval()
                for p in self._ref.parameters():
                    p.requires_grad_(False)
            self.rank, self.alpha = 0, 0.0
            return
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.rank, self.alpha = rank, float(alpha if alpha is not None else 2 * rank)
        targets = find_targets(self.model)
        gen = torch.Generator().manual_seed(seed)
        for t in targets:
            bound = 1.0 / t.in_features ** 0.5
            a = (torch.rand(1, rank, t.in_features, generator=gen) * 2 - 1) * bound
            b = torch.zeros(1, t.out_features, rank)
            self.weights[t.name] = (a.to(lm.device).requires_grad_(True),
                                    b.to(lm.device).requires_grad_(True))
        self.hooks = PerSampleLoRA(self.model, targets, scale=self.alpha / rank)

    # -- parameters ------------------------------------------------------------------------
    def parameters(self) -> list[torch.nn.Parameter | torch.Tensor]:
        if self.mode == "full":
            return [p for p in self.model.parameters() if p.requires_grad]
        return [t for ab in self.weights.values() for t in ab]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def updated(self) -> None:
        """Call after each optimiser step (new adapter name for the engine)."""
        self._version += 1

    def lora_ref(self) -> LoRARef | None:
        """The adapter to send with sampling requests (None in full mode: the engine's model
        is the policy)."""
        if self.mode == "full":
            return None
        tensors: dict[str, Any] = {name: (a[0].detach().clone(), b[0].detach().clone())
                                   for name, (a, b) in self.weights.items()}
        tensors["lora_alpha"] = self.alpha
        return LoRARef(f"{self.label}-policy-{id(self)}-{self._version}", tensors=tensors)

    # -- scoring ---------------------------------------------------------------------------
    def _score(self, model: Any, prompts: Sequence[EncodedPrompt],
               completions: Sequence[Sequence[int]], temperature: float,
               adapter: bool, allowed: Sequence[tuple[int, ...]] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
        lm = self.engine.loaded
        ctx: AbstractContextManager[Any] = nullcontext()
        if adapter and self.hooks is not None:
            ctx = self.hooks.apply(self.weights)
        with ctx:
            return completion_logprobs(model, self.engine.resolved.family, prompts, completions,
                                       pad_id=self.engine.pad_id, device=lm.device,
                                       dtype=lm.dtype, temperature=temperature,
                                       allowed=allowed)

    def logprobs(self, prompts: Sequence[EncodedPrompt], completions: Sequence[Sequence[int]],
                 temperature: float = 1.0, allowed: Sequence[tuple[int, ...]] | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logp (N, T), mask (N, T))`` under the policy, with gradients. ``allowed``: per
        row, the token ids a constrained completion was sampled among (empty: none), scored
        under the renormalised distribution the sampler drew from."""
        self.model.train(False)  # no dropout in these models; eval keeps the sampler's numerics
        return self._score(self.model, prompts, completions, temperature, True, allowed)

    def ref_logprobs(self, prompts: Sequence[EncodedPrompt],
                     completions: Sequence[Sequence[int]], temperature: float = 1.0,
                     allowed: Sequence[tuple[int, ...]] | None = None) -> torch.Tensor:
        """Log-probabilities under the reference policy (no gradients)."""
        with torch.no_grad():
            if self.mode == "full":
                if self._ref is None:
                    raise RuntimeError("this policy was built without a reference model")
                return self._score(self._ref, prompts, completions, temperature, False,
                                   allowed)[0]
            return self._score(self.model, prompts, completions, temperature, False,
                               allowed)[0]

    def reset_reference(self) -> None:
        """Make the current policy the reference (Vad-R1's Algorithm 2, line 2, at the start
        of RL; Anom-π's iDPO before its first round)."""
        if self.mode == "full":
            self._ref = copy.deepcopy(self.model).eval()
            for p in self._ref.parameters():
                p.requires_grad_(False)

    # -- checkpoints -----------------------------------------------------------------------
    def save(self, out: Path, meta: dict[str, Any]) -> None:
        """Write the checkpoint (module docstring) into ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        base = self.engine.resolved
        doc = {"format": self.format, "mode": self.mode, "backbone": str(base.id),
               "backbone_family": base.family, **meta}
        if self.mode == "full":
            for p in self.model.parameters():
                p.requires_grad_(False)
            self.model.save_pretrained(str(out), safe_serialization=True)
            for name in _MODEL_FILES:
                src = Path(base.path) / name
                if src.is_file() and not (out / name).exists():
                    shutil.copyfile(src, out / name)
            for p in self.model.parameters():
                p.requires_grad_(True)
        else:
            from harness.engines.lora_export import write_peft_dir

            tensors: dict[str, Any] = {name: (a[0].detach().float().cpu(),
                                              b[0].detach().float().cpu())
                                       for name, (a, b) in self.weights.items()}
            tensors["lora_alpha"] = self.alpha
            doc["rank"], doc["lora_alpha"] = self.rank, self.alpha
            write_peft_dir(tensors, out, base_model=str(base.id))
        (out / self.meta_file).write_text(json.dumps(doc, indent=1, default=str) + "\n",
                                     encoding="utf-8")


def read_policy_meta(path: str | Path, fmt: str, meta_file: str, what: str) -> dict[str, Any]:
    """A policy checkpoint's metadata (``meta_file`` of format ``fmt``), checked; errors name
    the file and field and call the checkpoint ``what`` ("Vad-R1", "Anom-π")."""
    p = Path(path)
    f = p / meta_file
    if not p.is_dir():
        raise CheckpointError(f"{p}: {what} checkpoint directory not found")
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{f}: not a {what} checkpoint ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise CheckpointError(f"{f}: field 'format' must be {fmt!r}")
    if doc.get("mode") not in MODES:
        raise CheckpointError(f"{f}: field 'mode' must be one of {MODES}")
    if not isinstance(doc.get("backbone"), str):
        raise CheckpointError(f"{f}: field 'backbone' missing")
    return doc


def checkpoint_digest(path: str | Path) -> str:
    """sha256 over a checkpoint directory's files (names and contents)."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def checkpoint_model(ckpt: str | Path | None, meta: dict[str, Any] | None, model: str | None,
                     ) -> str | None:
    """The model a run must load for a policy checkpoint: a full fine-tuning checkpoint is the
    model itself (``--model``, if given, must be that directory); a LoRA one runs on
    ``model``."""
    if not ckpt or meta is None or meta["mode"] != "full":
        return model
    if model is not None and Path(model).expanduser().resolve() != Path(ckpt).resolve():
        raise CheckpointError(f"{ckpt}: a full fine-tuning checkpoint is a model; it is "
                              f"evaluated as --model itself, not on --model {model!r}")
    return str(ckpt)
