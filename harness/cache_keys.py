"""Keys and values of the response cache (:mod:`harness.cache`): content digests of frames,
adapters and model directories, the engine identity, request keys, and the JSON encoding of
stored completions and embeddings. The key's definition is in :mod:`harness.cache`'s
docstring.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.engines.base import (
    Completion,
    Engine,
    EngineError,
    ImagePart,
    LoRARef,
    Message,
    Request,
    SamplingParams,
    TextPart,
    VideoPart,
)

#: Bump when the key or the stored value changes format: old entries then never match.
KEY_VERSION = 1
#: ``describe()`` keys that do not change what an engine answers to a greedy request.
VOLATILE_KEYS = frozenset({
    "batch_size", "max_concurrency", "timeout_s", "max_retries", "backoff_s", "backoff_max_s",
    "retry_after_max_s", "seed", "api_key_env", "cache",
})
_SMALL_FILE = 1 << 20




def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- digests -------------------------------------------------------------------------------------
def array_digest(arr: Any) -> dict[str, Any]:
    """``{"sha256", "shape", "dtype"}`` of an array's bytes (C order)."""
    a = np.ascontiguousarray(np.asarray(arr))
    h = hashlib.sha256()
    h.update(a.data if a.size else b"")
    return {"sha256": h.hexdigest(), "shape": list(a.shape), "dtype": str(a.dtype)}


_DIR_DIGESTS: dict[tuple[str, tuple[Any, ...]], str] = {}


def _dir_listing(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out.append((p.relative_to(root).as_posix(), p, p.stat()))
    return out


#: id(tensors mapping) -> (the mapping, its digest): the last 64 in-memory adapters hashed.
#: Adapters are treated as immutable once sent (as the engines do).
_TENSOR_DIGESTS: dict[int, tuple[Any, str]] = {}
_TENSOR_LOCK = threading.Lock()


def lora_digest(lora: LoRARef | None) -> dict[str, Any] | None:
    """Content digest of an adapter (``None`` for no adapter); see the module docstring."""
    if lora is None:
        return None
    h = hashlib.sha256()
    if lora.tensors is not None:  # the same digest the vllm engine names its PEFT dirs by
        from harness.engines.lora_export import tensors_digest

        # one adapter object is often sent with many requests (COPRA's chunk adapters): hash
        # it once. Keyed by identity, keeping the object alive so that its id is not reused.
        key = id(lora.tensors)
        with _TENSOR_LOCK:
            hit = _TENSOR_DIGESTS.get(key)
        if hit is None or hit[0] is not lora.tensors:
            hit = (lora.tensors, tensors_digest(lora.tensors))
            with _TENSOR_LOCK:
                _TENSOR_DIGESTS[key] = hit
                while len(_TENSOR_DIGESTS) > 64:
                    _TENSOR_DIGESTS.pop(next(iter(_TENSOR_DIGESTS)))
        return {"tensors_sha256": hit[1]}
    if lora.path is None:
        raise EngineError(f"LoRA adapter {lora.name!r} has neither a path nor tensors")
    root = Path(lora.path)
    if not root.exists():
        raise EngineError(f"LoRA adapter {lora.name!r}: {root} does not exist")
    listing = [(root.name, root, root.stat())] if root.is_file() else _dir_listing(root)
    stamp = tuple((rel, st.st_size, st.st_mtime_ns) for rel, _, st in listing)
    memo = (str(root.resolve()), stamp)
    if memo not in _DIR_DIGESTS:
        for rel, p, st in listing:
            h.update(canonical_json([rel, st.st_size]).encode())
            h.update(p.read_bytes())
        _DIR_DIGESTS[memo] = h.hexdigest()
    return {"dir_sha256": _DIR_DIGESTS[memo]}


def model_fingerprint(path: Path | str) -> str:
    """Digest of a model directory: relative names and sizes of all files, content of the
    small ones, hub blob names of symlinked ones."""
    root = Path(path)
    listing = _dir_listing(root) if root.is_dir() else []
    stamp = tuple((rel, st.st_size, st.st_mtime_ns) for rel, _, st in listing)
    memo = ("model:" + str(root.resolve()), stamp)
    if memo not in _DIR_DIGESTS:
        h = hashlib.sha256()
        for rel, p, st in listing:
            item: list[Any] = [rel, st.st_size]
            if p.is_symlink():
                item.append(Path(os.readlink(p)).name)  # hub cache: blob name = content hash
            elif st.st_size <= _SMALL_FILE:
                item.append(hashlib.sha256(p.read_bytes()).hexdigest())
            h.update(canonical_json(item).encode())
        _DIR_DIGESTS[memo] = h.hexdigest()
    return _DIR_DIGESTS[memo]


def engine_identity(engine: Engine) -> dict[str, Any]:
    """What identifies an engine's answers (see the module docstring)."""
    custom = getattr(engine, "cache_identity", None)
    if callable(custom):
        return dict(custom())
    desc = dict(engine.describe())
    ident: dict[str, Any] = {"engine": desc.get("engine", engine.name)}
    for k, v in desc.items():
        if k in VOLATILE_KEYS or k == "path":
            continue
        if k == "device" and isinstance(v, str):
            v = v.split(":")[0]
        ident[k] = v
    path = desc.get("path")
    resolved = getattr(engine, "resolved", None)
    if path is None and resolved is not None:
        path = getattr(resolved, "path", None)
    if path is not None and Path(str(path)).is_dir():
        ident["model_fingerprint"] = model_fingerprint(str(path))
    elif path is not None:
        ident["path"] = str(path)
    return ident


def _part_key(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"t": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"t": "image", **array_digest(part.image)}
    if isinstance(part, VideoPart):
        return {"t": "video", **array_digest(part.frames), "fps": float(part.fps),
                "frame_indices": [int(i) for i in part.frame_indices]}
    raise EngineError(f"cannot key a content part of type {type(part).__name__}")


def _message_key(msg: Message) -> dict[str, Any]:
    return {"role": msg.role, "content": [_part_key(p) for p in msg.content]}


def _sampling_key(sp: SamplingParams) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(sp):
        v = getattr(sp, f.name)
        if isinstance(f.default, float) and v is not None:
            v = float(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def is_cacheable(req: Request) -> bool:
    """Greedy with one completion: the answer depends on the inputs only."""
    return req.sampling.temperature <= 0 and req.sampling.n == 1


def request_key(engine_digest: str, req: Request) -> str:
    """The cache key of ``req`` for the engine whose identity digest is ``engine_digest``."""
    payload = {
        "v": KEY_VERSION,
        "kind": "generate",
        "engine": engine_digest,
        "messages": [_message_key(m) for m in req.messages],
        "sampling": _sampling_key(req.sampling),
        "lora": lora_digest(req.lora),
    }
    return _sha256(canonical_json(payload))


def embed_key(engine_digest: str, clip: np.ndarray) -> str:
    return _sha256(canonical_json({"v": KEY_VERSION, "kind": "embed", "engine": engine_digest,
                                   "clip": array_digest(clip)}))


# -- values --------------------------------------------------------------------------------------
_COMPLETION_FIELDS = tuple(f.name for f in dataclasses.fields(Completion))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def encode_completions(comps: Sequence[Completion]) -> str:
    """JSON of every field of every completion (dict order kept: top-k stays best first)."""
    return json.dumps({"completions": [{f: getattr(c, f) for f in _COMPLETION_FIELDS}
                                       for c in comps]},
                      separators=(",", ":"), default=_json_default)


def decode_completions(value: str) -> list[Completion]:
    data = json.loads(value)
    return [Completion(**{k: v for k, v in c.items() if k in _COMPLETION_FIELDS})
            for c in data["completions"]]


def encode_embedding(vec: np.ndarray) -> str:
    a = np.ascontiguousarray(vec)
    return json.dumps({"embedding": {"dtype": a.dtype.str, "shape": list(a.shape),
                                     "b64": base64.b64encode(a.tobytes()).decode("ascii")}})


def decode_embedding(value: str) -> np.ndarray:
    d = json.loads(value)["embedding"]
    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


# -- whole prediction records --------------------------------------------------------------------
_CODE_DIRS = ("harness", "methods", "tasks")
_CODE_DIGEST: str | None = None


def code_fingerprint() -> str:
    """sha256 over the project's Python sources (``harness/``, ``methods/``, ``tasks/``): any
    code change makes stored prediction records unreachable (computed once per process)."""
    global _CODE_DIGEST
    if _CODE_DIGEST is None:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        for d in _CODE_DIRS:
            for p in sorted((root / d).rglob("*.py")):
                h.update(p.relative_to(root).as_posix().encode())
                h.update(p.read_bytes())
        _CODE_DIGEST = h.hexdigest()
    return _CODE_DIGEST


def _source_stamp(path: Path | None) -> Any:
    """What identifies a video's content cheaply: path, size and modification time (a frame
    folder: the same of each of its files)."""
    if path is None:
        return None
    p = Path(path)
    try:
        if p.is_dir():
            return [str(p.resolve()), [(f.name, f.stat().st_size, f.stat().st_mtime_ns)
                                       for f in sorted(p.iterdir()) if f.is_file()]]
        st = p.stat()
    except OSError:
        return [str(p), None]
    return [str(p.resolve()), st.st_size, st.st_mtime_ns]


def record_key(engine_digest: str, method: dict[str, Any], context: dict[str, Any],
               sample: Any) -> str:
    """Key of a method's whole prediction record for one sample: the code, the engine, the
    method's resolved settings, the run context (window grid or frame plan, pixel budget,
    seed; not the batch size) and the sample (id, video file stamp, span, frame count, fps,
    queries)."""
    queries = [[q.qid, q.prompt, q.system, q.answer_format, [list(o) for o in q.options],
                q.max_new_tokens, q.temperature, q.top_p] for q in sample.queries]
    payload = {
        "v": KEY_VERSION, "kind": "record", "code": code_fingerprint(),
        "engine": engine_digest, "method": method, "context": context,
        "sample": [sample.video_id, _source_stamp(sample.path),
                   list(sample.span) if sample.span else None, sample.num_frames,
                   sample.fps, queries],
    }
    return "record:" + _sha256(canonical_json(payload))
