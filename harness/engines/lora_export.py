"""Write in-memory LoRA adapters as PEFT directories that vLLM (and PEFT) can load.

vLLM loads LoRA adapters only from a path (``LoRARequest.lora_path``), so adapters that a
method builds in memory (COPRA's per-chunk adapters) are exported to disk first.

Accepted tensor formats (``LoRARef.tensors``)
---------------------------------------------
Tensors are ``torch.Tensor`` or NumPy arrays. Two layouts are accepted (not mixed):

1. **Pairs**: ``{module_name: (A, B)}`` with ``A`` of shape ``(r, in_features)`` and ``B`` of
   shape ``(out_features, r)``; the weight update is ``delta_W = scale * B @ A``.
   ``module_name`` is the module's dotted path in the Hugging Face model, e.g.
   ``"model.layers.0.self_attn.q_proj"`` (``Qwen2ForCausalLM``) or
   ``"model.language_model.layers.0.self_attn.q_proj"`` (Qwen2-VL in transformers 5).
2. **PEFT state dict**: ``{"<prefix><module_name>.lora_A[.<adapter>].weight": A,
   "...lora_B[.<adapter>].weight": B}`` as ``peft.get_peft_model_state_dict`` or a
   ``adapter_model.safetensors`` holds it; the prefix ``base_model.model.`` is optional and
   an adapter name (``.default``) is dropped.

Optional scalar entries (not tensors) in either layout:

* ``"lora_alpha"``: PEFT's alpha; ``scale = lora_alpha / r``. Default: ``r`` (``scale = 1``),
  i.e. the producer has folded any scaling into ``B``.

Rules applied when writing:

* only language-model projection modules are kept (:data:`LM_TARGET_MODULES`: ``q_proj``,
  ``k_proj``, ``v_proj``, ``o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``); modules of the
  vision tower or projector (``visual.``, ``vision_tower``, ``vision_model``,
  ``multi_modal_projector``, ``mlp1``) and any other module are dropped with a warning (vLLM
  ignores LoRA weights outside the language model anyway);
* modules whose rank is below the adapter's largest rank are zero-padded to it (``B @ A`` is
  unchanged), so one ``r`` describes the whole adapter;
* tensors are stored contiguous, in the dtype given (float32 unless ``dtype`` says otherwise).

Directory layout: ``<root>/<name>/adapter_config.json`` + ``adapter_model.safetensors``
(keys ``base_model.model.<module>.lora_A.weight`` / ``lora_B.weight``). The root is a fresh
RAM-backed folder ``/dev/shm/vad-eval-lora-<pid>-<uuid>/`` when ``/dev/shm`` is usable, else a
temporary directory; :class:`LoRAStore` names adapters uniquely, gives each a unique integer
id, writes a given content only once (content hash) and removes the root on :meth:`close`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Language-model modules an exported adapter may target.
LM_TARGET_MODULES: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)  # fmt: skip
_VISION_MARKERS = ("visual.", "vision_tower", "vision_model", "multi_modal_projector", "mlp1.")
_PEFT_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<mod>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$"
)
_SCALARS = ("lora_alpha",)


@dataclass(frozen=True)
class ExportedAdapter:
    """An adapter written to disk: ``name`` (unique), ``int_id`` (unique, >= 1), ``path``,
    ``rank`` (``r``), ``modules`` (kept module paths) and ``digest`` (content hash)."""

    name: str
    int_id: int
    path: Path
    rank: int
    modules: tuple[str, ...]
    digest: str


def _tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x)))


def _is_vision(module: str) -> bool:
    return any(m in module for m in _VISION_MARKERS) or module.startswith(("visual", "vision"))


def normalize_tensors(
    tensors: Mapping[str, Any], modules: tuple[str, ...] = LM_TARGET_MODULES,
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], float | None, list[str]]:
    """Parse either accepted layout into ``{module: (A, B)}``, the optional ``lora_alpha``, and
    the list of dropped modules (vision tower, or a projection kind not in ``modules``; the
    ``hf`` engine passes its wider list, fused projections included). Raises ``ValueError`` on
    malformed input (missing half of a pair, shape mismatch, mixed layouts)."""
    alpha: float | None = None
    pairs: dict[str, list[Any]] = {}
    layout: str | None = None
    for key, value in tensors.items():
        if key in _SCALARS:
            alpha = float(value)
            continue
        m = _PEFT_KEY.match(key)
        kind = "peft" if m else "pairs"
        if layout is None:
            layout = kind
        elif layout != kind:
            raise ValueError(f"LoRA tensors mix the pair and PEFT layouts (key {key!r})")
        if m:
            slot = pairs.setdefault(m["mod"], [None, None])
            slot[0 if m["ab"] == "A" else 1] = value
        else:
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise ValueError(f"LoRA entry {key!r} must be an (A, B) pair")
            pairs[key] = list(value)
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    dropped: list[str] = []
    for module, (a, b) in sorted(pairs.items()):
        if a is None or b is None:
            raise ValueError(f"LoRA module {module!r} lacks its lora_{'A' if a is None else 'B'}")
        if _is_vision(module) or module.rsplit(".", 1)[-1] not in modules:
            dropped.append(module)
            continue
        ta, tb = _tensor(a), _tensor(b)
        if ta.dim() != 2 or tb.dim() != 2 or ta.shape[0] != tb.shape[1]:
            raise ValueError(
                f"LoRA module {module!r}: A {tuple(ta.shape)} and B {tuple(tb.shape)} do not "
                "form (r, in) and (out, r)"
            )
        out[module] = (ta, tb)
    return out, alpha, dropped


def tensors_digest(tensors: Mapping[str, Any]) -> str:
    """A content hash of an adapter (module names, shapes, dtypes, bytes, alpha)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        value = tensors[key]
        h.update(key.encode())
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if isinstance(item, int | float):
                h.update(repr(float(item)).encode())
                continue
            t = _tensor(item).contiguous()
            h.update(f"{tuple(t.shape)}{t.dtype}".encode())
            # reshape(-1): a 0-d tensor cannot be viewed as bytes directly
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_peft_dir(
    tensors: Mapping[str, Any],
    out_dir: Path,
    dtype: torch.dtype | None = None,
    base_model: str | None = None,
) -> tuple[int, tuple[str, ...]]:
    """Write ``tensors`` (see the module docstring) as a PEFT LoRA directory ``out_dir``.

    Returns ``(rank, kept modules)``. Raises ``ValueError`` if no language-model module is
    left after dropping vision/non-target modules.
    """
    from safetensors.torch import save_file

    pairs, alpha, dropped = normalize_tensors(tensors)
    if dropped:
        log.warning(
            "LoRA export: dropped %d module(s) outside the language model's %s (vLLM applies "
            "LoRA to the language model only): %s",
            len(dropped), "/".join(LM_TARGET_MODULES), ", ".join(dropped[:6])
            + (" ..." if len(dropped) > 6 else ""),
        )  # fmt: skip
    if not pairs:
        raise ValueError("LoRA adapter has no language-model module to export")
    rank = max(a.shape[0] for a, _ in pairs.values())
    state: dict[str, torch.Tensor] = {}
    for module, (a, b) in pairs.items():
        if a.shape[0] < rank:  # zero-pad: B @ A unchanged
            pad = rank - a.shape[0]
            a = torch.cat([a, a.new_zeros(pad, a.shape[1])], dim=0)
            b = torch.cat([b, b.new_zeros(b.shape[0], pad)], dim=1)
        if dtype is not None:
            a, b = a.to(dtype), b.to(dtype)
        state[f"base_model.model.{module}.lora_A.weight"] = a.contiguous()
        state[f"base_model.model.{module}.lora_B.weight"] = b.contiguous()
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = sorted({m.rsplit(".", 1)[-1] for m in pairs})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": int(rank),
        "lora_alpha": float(alpha) if alpha is not None else float(rank),
        "lora_dropout": 0.0,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "inference_mode": True,
    }
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file(state, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    return int(rank), tuple(sorted(pairs))


def peft_dir_rank(path: Path) -> int:
    """``r`` of a PEFT LoRA directory (the largest of ``r`` and its ``rank_pattern``)."""
    cfg = json.loads((Path(path) / "adapter_config.json").read_text())
    ranks = [int(cfg.get("r", 0)), *(int(v) for v in (cfg.get("rank_pattern") or {}).values())]
    return max(ranks)


def ram_root(prefix: str = "vad-eval-lora") -> Path:
    """A fresh folder on ``/dev/shm`` if it is a writable directory, else in the temp dir."""
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        try:
            root = shm / name
            root.mkdir(mode=0o700)
            return root
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=f"{name}-"))


class LoRAStore:
    """Adapters of one engine: name -> unique integer id (from 1), tensors exported once.

    ``register(name, path=...)`` takes an adapter already on disk; ``register(name,
    tensors=...)`` exports it to the RAM folder, keyed by content hash: the same content under
    a second name is not written again (the two names share one directory but get distinct
    ids, as vLLM requires unique ids per name). Reusing a name for different content is an
    error (``LoRARef.name`` must be unique per distinct adapter). Thread-safe; :meth:`close`
    removes the exported files (directories given as paths are left alone).
    """

    def __init__(self, dtype: torch.dtype | None = None, base_model: str | None = None) -> None:
        self.dtype = dtype
        self.base_model = base_model
        self._root: Path | None = None
        self._by_name: dict[str, ExportedAdapter] = {}
        self._by_digest: dict[str, tuple[Path, int, tuple[str, ...]]] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    @property
    def root(self) -> Path | None:
        """The export folder (``None`` until the first tensor adapter is written)."""
        return self._root

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> ExportedAdapter | None:
        return self._by_name.get(name)

    def register(
        self, name: str, path: str | os.PathLike[str] | None = None,
        tensors: Mapping[str, Any] | None = None,
    ) -> ExportedAdapter:  # fmt: skip
        """The adapter ``name`` (exported on first sight)."""
        if (path is None) == (tensors is None):
            raise ValueError(f"LoRA {name!r}: give exactly one of path and tensors")
        with self._lock:
            digest = (
                tensors_digest(tensors) if tensors is not None
                else "path:" + str(Path(path).resolve())  # type: ignore[arg-type]
            )  # fmt: skip
            known = self._by_name.get(name)
            if known is not None:
                if known.digest != digest:
                    raise ValueError(
                        f"LoRA name {name!r} was used for two different adapters; names must "
                        "be unique per distinct adapter"
                    )
                return known
            if tensors is not None:
                if digest not in self._by_digest:
                    if self._root is None:
                        self._root = ram_root()
                    out = self._root / f"a{len(self._by_digest):05d}-{digest[:16]}"
                    rank, modules = write_peft_dir(tensors, out, self.dtype, self.base_model)
                    self._by_digest[digest] = (out, rank, modules)
                out, rank, modules = self._by_digest[digest]
            else:
                out = Path(path)  # type: ignore[arg-type]
                if not (out / "adapter_config.json").is_file():
                    raise ValueError(f"LoRA {name!r}: {out} is not a PEFT adapter directory")
                rank, modules = peft_dir_rank(out), ()
            adapter = ExportedAdapter(name, self._next_id, out, rank, modules, digest)
            self._next_id += 1
            self._by_name[name] = adapter
            return adapter

    def close(self) -> None:
        """Delete the exported adapters' folder (adapters given as paths are left alone)."""
        with self._lock:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None
            self._by_name.clear()
            self._by_digest.clear()
