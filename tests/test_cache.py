"""Response cache: keys (what hits, what misses), pass-through of sampled requests, one inner
call per batch of misses, crash safety of the per-process logs, compaction, several processes
writing at once, and the frozen baseline on the tiny model answered from the cache."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cache import (
    DB_NAME,
    LOG_DIR,
    CachedEngine,
    ResponseStore,
    engine_identity,
    iter_entries,
    wrap_engine,
)
from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    ImagePart,
    LoRARef,
    Message,
    Request,
    Response,
    SamplingParams,
    TextPart,
    VideoPart,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


class CountingEngine(Engine):
    """Answers ``answer-<k>`` with a global counter k, so a recomputed answer differs from a
    cached one; records every generate/embed call."""

    name = "counting"
    capabilities = EngineCapabilities(logprobs=True, embeddings=True)

    def __init__(self, model: str = "m1", dtype: str = "float32", path: str | None = None,
                 batch_size: int = 8) -> None:
        self.model, self.dtype, self.path, self.batch_size = model, dtype, path, batch_size
        self.calls: list[list[Request]] = []
        self.embed_calls: list[int] = []
        self.counter = 0
        self.closed = False

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            comps = []
            for j in range(r.sampling.n):
                self.counter += 1
                comps.append(Completion(
                    text=f"answer-{self.counter}-{j}", token_ids=[7, self.counter, 2],
                    token_logprobs=[-0.125, -1 / 3, -math.inf],
                    top_logprobs=[{"zeta": -0.125, "alpha": -2.5}, {"b": -1 / 3}, {"": -math.inf}],
                    target_logprobs=[{"Yes": -0.7, "No": -0.69}] * 3,
                    finish_reason="length",
                ))
            out.append(Response(r.request_id, comps))
        return out

    def embed_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        self.embed_calls.append(len(clips))
        rows = [np.asarray(c, np.float32).reshape(-1)[:4] / 255.0 + self.counter for c in clips]
        self.counter += 1
        return np.stack(rows).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "model": self.model, "dtype": self.dtype,
                "batch_size": self.batch_size, "path": self.path, "device": "cpu"}

    def close(self) -> None:
        self.closed = True


def _frames(seed: int = 0, t: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 8, 8, 3), dtype=np.uint8)


def _req(text: str = "Is it abnormal?", seed: int = 0, rid: str = "r", fps: float = 2.0,
         lora: LoRARef | None = None, **sampling: Any) -> Request:
    sp = SamplingParams(**{"max_new_tokens": 4, "logprobs": 5, **sampling})
    msg = Message.user(VideoPart(_frames(seed), fps=fps, frame_indices=(0, 5, 10)), text)
    return Request((Message.system("sys"), msg), sp, lora=lora, request_id=rid)


def _as_json(responses: list[Response]) -> str:
    return json.dumps([[c.__dict__ for c in r.completions] for r in responses])


# -- hits and misses -------------------------------------------------------------------------
def test_identical_requests_hit_with_exact_values(tmp_path: Path) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    reqs = [_req(seed=i, rid=f"a{i}") for i in range(4)]
    first = eng.generate(reqs)
    assert len(inner.calls) == 1 and len(inner.calls[0]) == 4
    again = [replace(r, request_id=f"b{i}") for i, r in enumerate(reqs)]
    second = eng.generate(again)
    assert len(inner.calls) == 1  # nothing recomputed
    assert [r.request_id for r in second] == ["b0", "b1", "b2", "b3"]
    assert _as_json(second) == _as_json(first)
    c = second[0].completions[0]
    assert c.token_logprobs[2] == -math.inf and c.token_logprobs[1] == -1 / 3
    assert list(c.top_logprobs[0]) == ["zeta", "alpha"]  # order kept (best first)
    assert eng.stats.as_dict() == {
        "hits": 4, "misses": 4, "uncacheable": 0, "model_calls": 1, "requests_sent": 4,
        "embed_hits": 0, "embed_misses": 0, "embed_calls": 0, "clips_sent": 0,
        "write_errors": 0, "record_hits": 0, "record_misses": 0}
    eng.close()
    assert inner.closed
    # a fresh process-like reopen reads them from SQLite
    inner2 = CountingEngine()
    eng2 = CachedEngine(inner2, tmp_path / "c")
    assert _as_json(eng2.generate(again)) == _as_json(first) and inner2.calls == []
    eng2.close()


def test_misses_go_in_one_call_in_order(tmp_path: Path) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    eng.generate([_req(seed=1, rid="x1"), _req(seed=3, rid="x3")])
    batch = [_req(seed=i, rid=f"q{i}") for i in range(5)]
    batch.insert(2, _req(seed=9, rid="hot", temperature=0.8))
    out = eng.generate(batch)
    assert [r.request_id for r in out] == [r.request_id for r in batch]
    assert len(inner.calls) == 2
    assert [r.request_id for r in inner.calls[1]] == ["q0", "hot", "q2", "q4"]
    assert (eng.stats.hits, eng.stats.misses, eng.stats.uncacheable) == (2, 5, 1)
    eng.close()


def _variants() -> dict[str, Request]:
    base = _req()
    f = _frames(0).copy()
    f[1, 2, 3, 0] ^= 1  # one pixel, one bit
    user = Message.user(VideoPart(f, fps=2.0, frame_indices=(0, 5, 10)), "Is it abnormal?")
    return {
        "text": _req(text="Is it abnormal? "),
        "pixel": replace(base, messages=(base.messages[0], user)),
        "fps": _req(fps=2.5),
        "frame_indices": replace(base, messages=(base.messages[0], Message.user(
            VideoPart(_frames(0), fps=2.0, frame_indices=(0, 5, 11)), "Is it abnormal?"))),
        "system": replace(base, messages=(Message.system("sys2"), base.messages[1])),
        "role": replace(base, messages=(Message("user", (TextPart("sys"),)), base.messages[1])),
        "image_not_video": replace(base, messages=(base.messages[0], Message.user(
            ImagePart(_frames(0)[0]), "Is it abnormal?"))),
        "max_new_tokens": _req(max_new_tokens=5),
        "logprobs": _req(logprobs=6),
        "no_logprobs": _req(logprobs=None),
        "top_p": _req(top_p=0.9),
        "seed": replace(base, sampling=replace(base.sampling, seed=3)),
        "stop": _req(stop=("\n",)),
        "target_tokens": _req(target_tokens=("Yes",)),
        "lora_tensors": _req(lora=LoRARef("a", tensors={"w": np.ones(3, np.float32)})),
    }


@pytest.mark.parametrize("what", sorted(_variants()))
def test_any_change_is_a_miss(tmp_path: Path, what: str) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    eng.generate([_req()])
    eng.generate([_variants()[what]])
    assert len(inner.calls) == 2, what
    eng.generate([_req(), _variants()[what]])  # both cached now
    assert len(inner.calls) == 2
    eng.close()


def test_equal_values_written_differently_hit(tmp_path: Path) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    eng.generate([_req(fps=2.0, temperature=0.0, top_p=1.0)])
    eng.generate([_req(fps=2, temperature=0, top_p=1)])  # ints for floats
    assert len(inner.calls) == 1
    eng.close()


def test_adapter_content_is_the_key(tmp_path: Path) -> None:
    import torch

    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    t = {"a.weight": torch.ones(2, 3, dtype=torch.bfloat16), "b": torch.zeros(())}
    eng.generate([_req(lora=LoRARef("one", tensors=t))])
    eng.generate([_req(lora=LoRARef("other-name", tensors={k: v.clone() for k, v in t.items()}))])
    assert len(inner.calls) == 1  # same content under another name: hit
    t2 = dict(t, **{"a.weight": t["a.weight"].clone()})
    t2["a.weight"][1, 2] = 1.0078125  # next bfloat16 after 1
    eng.generate([_req(lora=LoRARef("one", tensors=t2))])
    assert len(inner.calls) == 2
    # a PEFT directory: its files' contents
    d = tmp_path / "peft"
    d.mkdir()
    (d / "adapter_config.json").write_text('{"r": 8}')
    (d / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    eng.generate([_req(lora=LoRARef("p", path=str(d)))])
    eng.generate([_req(lora=LoRARef("p", path=str(d)))])
    assert len(inner.calls) == 3
    (d / "adapter_model.safetensors").write_bytes(b"\x00" * 63 + b"\x01")
    eng.generate([_req(lora=LoRARef("p", path=str(d)))])
    assert len(inner.calls) == 4
    eng.close()


@pytest.mark.parametrize("change", ["model", "dtype"])
def test_engine_identity_is_in_the_key(tmp_path: Path, change: str) -> None:
    a = CachedEngine(CountingEngine(), tmp_path / "c")
    a.generate([_req()])
    a.close()
    inner = CountingEngine(model="other") if change == "model" else CountingEngine(dtype="other")
    b = CachedEngine(inner, tmp_path / "c")
    b.generate([_req()])
    assert len(inner.calls) == 1
    b.close()
    # batch size does not change results: a hit
    inner = CountingEngine(batch_size=1)
    c = CachedEngine(inner, tmp_path / "c")
    c.generate([_req()])
    assert inner.calls == []
    c.close()


def test_model_directory_fingerprint(tmp_path: Path) -> None:
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text('{"hidden_size": 64}')
    (src / "model.safetensors").write_bytes(b"w" * 100)
    ident = engine_identity(CountingEngine(path=str(src)))
    assert "path" not in ident and ident["model_fingerprint"]
    a = CachedEngine(CountingEngine(path=str(src)), tmp_path / "c")
    a.generate([_req()])
    a.close()  # a live instance's newest entries are visible to others once compacted
    moved = tmp_path / "elsewhere"
    shutil.copytree(src, moved)
    inner = CountingEngine(path=str(moved))
    b = CachedEngine(inner, tmp_path / "c")
    b.generate([_req()])
    assert inner.calls == []  # same files elsewhere: same model
    (moved / "config.json").write_text('{"hidden_size": 65}')
    inner = CountingEngine(path=str(moved))
    c = CachedEngine(inner, tmp_path / "c")
    c.generate([_req()])
    assert len(inner.calls) == 1
    b.close()
    c.close()


def test_sampled_requests_are_never_cached(tmp_path: Path) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    reqs = [_req(temperature=0.7, seed=1), _req(n=2)]  # sampled; greedy but n > 1
    one = eng.generate(reqs)
    two = eng.generate(reqs)
    assert len(inner.calls) == 2 and _as_json(one) != _as_json(two)
    assert (eng.stats.uncacheable, eng.stats.hits, eng.stats.misses) == (4, 0, 0)
    eng.close()
    assert list(iter_entries(tmp_path / "c")) == []


def test_embeddings_are_cached_per_clip(tmp_path: Path) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    clips = [_frames(i) for i in range(3)]
    first = eng.embed_frames(clips)
    mixed = eng.embed_frames([clips[2], _frames(7), clips[0]])
    assert inner.embed_calls == [3, 1]
    np.testing.assert_array_equal(mixed[0], first[2])
    np.testing.assert_array_equal(mixed[2], first[0])
    assert mixed.dtype == np.float32 and mixed.shape == (3, 4)
    again = eng.embed_frames(clips)
    assert inner.embed_calls == [3, 1]
    np.testing.assert_array_equal(again, first)
    eng.close()


def test_wrapper_passes_through_and_describes(tmp_path: Path) -> None:
    inner = CountingEngine()
    inner.resolved = "resolved-model"  # type: ignore[attr-defined]
    eng = wrap_engine(inner, enabled=True, path=tmp_path / "c")
    assert isinstance(eng, CachedEngine) and wrap_engine(eng, True) is eng
    assert eng.name == "counting" and eng.capabilities == inner.capabilities
    assert eng.resolved == "resolved-model"  # type: ignore[attr-defined]
    d = eng.describe()
    assert d["model"] == "m1" and d["cache"]["enabled"] is True
    assert d["cache"]["path"] == str(tmp_path / "c")
    eng.close()

    off = wrap_engine(CountingEngine(), enabled=False, path=tmp_path / "off")
    off.generate([_req()])
    off.generate([_req()])
    assert isinstance(off, CachedEngine)
    assert off.describe()["cache"] == {"enabled": False, "path": None, "engine_identity": None}
    assert off.stats.model_calls == 2 and not (tmp_path / "off").exists()
    off.close()


def test_default_location_is_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("VAD_EVAL_CACHE", str(tmp_path / "root"))
    eng = CachedEngine(CountingEngine())
    eng.generate([_req()])
    eng.close()
    assert (tmp_path / "root" / "responses" / DB_NAME).is_file()


def test_engine_pickles(tmp_path: Path) -> None:
    eng = CachedEngine(CountingEngine(), tmp_path / "c")
    eng.generate([_req()])
    clone = pickle.loads(pickle.dumps(eng))
    clone.generate([_req()])
    assert clone.stats.hits == 1 and len(clone.inner.calls) == 1  # the copy's call list
    clone.close()
    eng.close()


def test_a_failing_cache_never_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    assert eng.store is not None

    def full(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(eng.store, "put_many", full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        out = eng.generate([_req()])
    assert out[0].completions[0].text.startswith("answer-")
    eng.generate([_req()])  # not stored: computed again, no second warning
    assert len(inner.calls) == 2 and eng.stats.write_errors == 2
    monkeypatch.undo()
    eng.close()


def test_a_failed_append_leaves_no_partial_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.cache_store as cache_mod

    st = ResponseStore(tmp_path / "c", compact_every=100)
    st.put_many([("k0", "{}")])
    assert st._log_path is not None
    size = st._log_path.stat().st_size
    real_write = os.write

    def half_then_fail(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod.os, "write", half_then_fail)
    with pytest.raises(OSError):
        st.put_many([("k1", '{"a":' + "1" * 100 + "}")])
    monkeypatch.undo()
    assert st._log_path.stat().st_size == size
    st.put_many([("k2", "{}")])
    st.close()
    assert [k for k, _ in iter_entries(tmp_path / "c")] == ["k0", "k2"]


# -- crash safety and compaction -------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys, time
    from harness.cache import ResponseStore
    st = ResponseStore(sys.argv[1])
    for i in range(5):
        st.put_many([(f"k{i}", '{"completions":[{"text":"v%d"}]}' % i)])
    print("ready", flush=True)
    time.sleep(60)
""")


def test_killed_writer_keeps_complete_entries(tmp_path: Path) -> None:
    root = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        logs = list((root / LOG_DIR).glob("*.jsonl"))
        assert len(logs) == 1
        # while the writer lives its log is locked: another store leaves it alone
        other = ResponseStore(root)
        assert len(other) == 0 and logs[0].exists()
        other.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with logs[0].open("ab") as fh:  # the write the kill interrupted
        fh.write(b'{"k":"k5","v":{"completions":[{"te')
    st = ResponseStore(root)
    assert st.skipped_lines == 1
    assert [st.get(f"k{i}") for i in range(6)] == [
        f'{{"completions":[{{"text":"v{i}"}}]}}' for i in range(5)] + [None]
    assert not logs[0].exists()  # moved into SQLite
    st.put_many([("k5", '{"completions":[{"text":"v5"}]}')])
    st.close()
    assert len(list(iter_entries(root))) == 6
    assert list((root / LOG_DIR).glob("*.jsonl")) == []


def test_compaction_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "c"
    st = ResponseStore(root, compact_every=1000)
    st.put_many([(f"k{i}", f'{{"x":{i}}}') for i in range(10)])
    assert st._log_path is not None
    saved = st._log_path.read_bytes()
    assert len(st) == 10
    st.compact()
    st.compact()
    assert len(st) == 10 and st._log_path.stat().st_size == 0
    st.close()
    before = list(iter_entries(root))
    # a crash after the SQLite commit but before the log was truncated: the log comes back
    (root / LOG_DIR / "deadhost-1-abc.jsonl").write_bytes(saved)
    st2 = ResponseStore(root)
    assert len(st2) == 10 and st2.get("k3") == '{"x":3}'
    st2.compact()
    st2.close()
    assert list(iter_entries(root)) == before


def test_own_log_compacts_every_n(tmp_path: Path) -> None:
    st = ResponseStore(tmp_path / "c", compact_every=4)
    for i in range(9):
        st.put_many([(f"k{i}", "{}")])
    assert len(list(iter_entries(tmp_path / "c"))) == 8  # two compactions so far
    assert len(st) == 9
    st.close()
    assert len(list(iter_entries(tmp_path / "c"))) == 9


def _worker(root: str, worker: int, out: Any) -> None:
    """One process of the concurrency test: 120 requests, 40 of them shared with the other
    worker, in batches of varying size, compacting often."""
    inner = CountingEngine()
    eng = CachedEngine(inner, root, compact_every=7)
    reqs = [_req(text=f"w{worker}-{i}") for i in range(80)] + \
        [_req(text=f"shared-{i}") for i in range(40)]
    lo, size = 0, 1
    while lo < len(reqs):
        eng.generate(reqs[lo:lo + size])
        lo += size
        size = size % 9 + 1
    eng.close()
    out.put((worker, sum(len(c) for c in inner.calls)))


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_concurrent_processes_lose_nothing(tmp_path: Path, method: str) -> None:
    root = str(tmp_path / "c")
    ctx: Any = mp.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(root, w, q)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    sent = dict(q.get(timeout=5) for _ in procs)
    assert sent[0] >= 80 and sent[1] >= 80
    inner = CountingEngine()
    eng = CachedEngine(inner, root)
    reqs = [_req(text=f"w{w}-{i}") for w in range(2) for i in range(80)] + \
        [_req(text=f"shared-{i}") for i in range(40)]
    eng.generate(reqs)
    assert inner.calls == [] and eng.stats.hits == 200
    eng.close()
    assert len(list(iter_entries(root))) == 200
    assert list(Path(root, LOG_DIR).glob("*.jsonl")) == []


def _forked_child(eng: CachedEngine) -> None:
    eng.generate([_req(text="from the child")])
    eng.close()
    os._exit(0)


def test_store_survives_fork(tmp_path: Path) -> None:
    inner = CountingEngine()
    eng = CachedEngine(inner, tmp_path / "c")
    eng.generate([_req(text="from the parent, before")])
    p = mp.get_context("fork").Process(target=_forked_child, args=(eng,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    eng.generate([_req(text="from the parent, after")])
    eng.close()
    inner2 = CountingEngine()
    check = CachedEngine(inner2, tmp_path / "c")
    check.generate([_req(text=t) for t in ("from the parent, before", "from the child",
                                           "from the parent, after")])
    assert inner2.calls == []
    check.close()


# -- the frozen baseline through the cache on the tiny model ----------------------------------
def test_frozen_on_tiny_model_reruns_from_the_cache(tmp_path: Path) -> None:
    from harness.engines.hf import HFEngine
    from methods.base import RunContext
    from methods.frozen import FrozenBaseline
    from tasks.base import VideoSample
    from tasks.windows import WindowSpec
    from tests.videos import write_counting_video

    path = write_counting_video(tmp_path / "v.mp4", 64)
    sample = VideoSample("v", 64, fps=2.0, path=path)
    ctx = RunContext(batch_size=4, window=WindowSpec(stride=16))
    hf = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=4)
    records, stats = [], []
    for _ in range(2):  # two separate runs: a fresh wrapper each time, the same cache
        eng = CachedEngine(hf, tmp_path / "cache")
        records.append(FrozenBaseline(eng, frames_per_window=4).predict(sample, ctx))
        assert eng.store is not None
        eng.store.close()  # the wrapper's close() would also close the shared model
        stats.append(eng.stats)
    assert json.dumps(records[0], sort_keys=True) == json.dumps(records[1], sort_keys=True)
    assert stats[0].model_calls > 0 and stats[0].embed_calls > 0
    assert stats[1].model_calls == 0 and stats[1].embed_calls == 0
    assert stats[1].hits == stats[0].misses == len(records[0]["windows"]["step1"])
    assert records[0]["windows"]["retrieval_features"] == "vlm"
    hf.close()
