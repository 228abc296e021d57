"""COMET scores from a local ``unbabel-comet`` checkpoint (optional extra ``vad-eval[comet]``).

COMET is a neural metric: the numbers depend on the checkpoint (VRU-Accident reports COMET
without naming one; ``Unbabel/wmt22-comet-da`` is the package's default). Nothing is
downloaded: the checkpoint must be a local file, given as ``model_path`` or through
``VAD_EVAL_COMET_MODEL``; a model folder as downloaded from the hub (holding
``checkpoints/model.ckpt``) is accepted too. Captioning has no source sentence, so ``src`` is
``""`` for every pair. Batches of 8, on one GPU when CUDA is available, else on the CPU.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tasks.metrics.text.assets import Unavailable

__all__ = ["COMET_MODEL_ENV", "comet_scores"]

COMET_MODEL_ENV = "VAD_EVAL_COMET_MODEL"
_BATCH_SIZE = 8


def _checkpoint(path: str) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "checkpoints" / "model.ckpt"
    if not p.is_file():
        raise FileNotFoundError(f"COMET checkpoint not found: {p}")
    return p


def comet_scores(
    refs: Sequence[str], hyps: Sequence[str], model_path: str | None = None
) -> np.ndarray | Unavailable:
    """Per-pair COMET scores ``(N,)`` of ``hyps[i]`` against ``refs[i]``.

    :class:`Unavailable` when ``unbabel-comet`` is not installed or no checkpoint is named
    (argument or ``VAD_EVAL_COMET_MODEL``); ``FileNotFoundError`` when the named one does
    not exist.
    """
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("refs and hyps must be sequences of strings, not strings")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    try:
        comet = importlib.import_module("comet")
    except ImportError:
        return Unavailable(
            "comet",
            "the package unbabel-comet is not installed; install with: "
            "pip install 'vad-eval[comet]' (unbabel-comet==2.2.7)",
        )
    path = model_path or os.environ.get(COMET_MODEL_ENV, "")
    if not path:
        return Unavailable(
            "comet",
            f"no COMET checkpoint: pass model_path or set {COMET_MODEL_ENV} to a local "
            "model.ckpt (e.g. Unbabel/wmt22-comet-da's checkpoints/model.ckpt)",
        )
    checkpoint = _checkpoint(path)
    model = comet.load_from_checkpoint(str(checkpoint))
    if len(refs) == 0:
        return np.zeros(0, dtype=np.float64)
    import torch

    data = [{"src": "", "mt": h, "ref": r} for r, h in zip(refs, hyps, strict=True)]
    gpus = 1 if torch.cuda.is_available() else 0
    output = model.predict(data, batch_size=_BATCH_SIZE, gpus=gpus, progress_bar=False)
    return np.asarray(output.scores, dtype=np.float64)
