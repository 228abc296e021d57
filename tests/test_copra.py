"""COPRA's evaluation methods on the tiny Qwen2-VL: an untrained COPRA is the frozen baseline
exactly; units and generator calls per granularity (hand-computed); checkpoints (round trip,
wrong backbone, wrong variant); the adapters a chunk exports as a PEFT directory give the same
answers as the in-memory ones; zero-shot answering on a language task."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.engines.base import Engine, LoRARef, Request, Response
from harness.engines.hf import HFEngine
from harness.engines.lora_export import LoRAStore
from harness.registry import METHODS, TASKS
from harness.training import CheckpointError
from methods.base import RunContext
from methods.copra.generator import GeneratorConfig
from methods.copra.method import CopraMethod, CopraStatic
from methods.copra.model import CopraModel, CopraSpec, conditioning_tokens
from methods.copra.units import chunk_frames, plan_units
from methods.frozen import FrozenBaseline
from tasks.base import VideoSample
from tasks.windows import WindowSpec, make_grid

SMALL = dict(width=32, heads=4, rank=2)


@pytest.fixture(scope="module")
def engine(tiny_qwen_engine: HFEngine) -> HFEngine:
    return tiny_qwen_engine


@pytest.fixture(scope="module")
def video() -> VideoSample:
    samples = TASKS.get("ucf_crime")().load(None, "sample")  # type: ignore[operator]
    return next(s for s in samples if s.is_anomalous)


class Spy(Engine):
    """Forwards to the tiny engine and keeps every request."""

    def __init__(self, inner: HFEngine) -> None:
        self.inner, self.name, self.capabilities = inner, inner.name, inner.capabilities
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.requests.extend(requests)
        return self.inner.generate(requests)

    def embed_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return self.inner.embed_frames(clips)

    def visual_tokens(self, clips: Sequence[np.ndarray]) -> list[Any]:
        return self.inner.visual_tokens(clips)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)


CTX = RunContext(batch_size=8, window=WindowSpec(stride=48))  # fewer windows: a faster test


def test_registered() -> None:
    for name in ("copra", "copra-noprior", "copra-static"):
        assert issubclass(METHODS.get(name), CopraMethod)  # type: ignore[arg-type]


def test_untrained_copra_is_exactly_the_frozen_baseline(engine: HFEngine,
                                                        video: VideoSample) -> None:
    frozen = FrozenBaseline(engine).predict(video, CTX)
    for cls, extra in ((CopraMethod, {}), (CopraStatic, {}),
                       (CopraMethod, {"granularity": "chunk", "chunk_seconds": 2.0})):
        rec = cls(engine, **SMALL, **extra).predict(video, CTX)  # type: ignore[arg-type]
        assert rec["scores"] == frozen["scores"]
        assert rec["step_scores"] == frozen["step_scores"]
        assert rec["windows"]["step1"] == frozen["windows"]["step1"]
        assert rec["adaptation"]["adapters_generated"] == rec["adaptation"]["units"] > 0


def test_units_by_hand() -> None:
    grid = make_grid(200, 30.0, WindowSpec(stride=16, frames_per_window=4, sampler="arange"))
    seg = plan_units(grid, 200, 30.0, "segment")
    assert len(seg) == len(grid) == 13 and seg.window_unit.tolist() == list(range(13))
    assert seg.spans[0] == (0, int(grid.indices[0].max()) + 1)
    assert seg.extra_indices().size == 0
    assert chunk_frames(2.0, 30.0) == 60
    ch = plan_units(grid, 200, 30.0, "chunk", chunk_seconds=2.0, n=4)
    assert ch.spans == [(0, 60), (60, 120), (120, 180), (180, 200)]
    # centres 0, 16, ..., 192 -> chunk of the centre frame
    assert ch.window_unit.tolist() == [c // 60 for c in range(0, 200, 16)]
    assert ch.conditioning[1].tolist() == [60, 75, 90, 105]  # stride 60 / 4 from the start
    assert ch.conditioning[3].tolist() == [180, 185, 190, 195]
    vid = plan_units(grid, 200, 30.0, "video", n=4)
    assert vid.spans == [(0, 200)] and vid.conditioning[0].tolist() == [0, 50, 100, 150]
    assert set(vid.window_unit.tolist()) == {0}
    with pytest.raises(ValueError, match="granularity"):
        plan_units(grid, 200, 30.0, "clip")


@pytest.mark.parametrize("granularity,seconds", [("chunk", 2.0), ("video", 120.0),
                                                 ("segment", 120.0)])
def test_generator_runs_once_per_unit(engine: HFEngine, video: VideoSample, granularity: str,
                                      seconds: float) -> None:
    spy = Spy(engine)
    method = CopraMethod(spy, granularity=granularity, chunk_seconds=seconds, **SMALL)
    rec = method.predict(video, CTX)
    grid = make_grid(video.num_frames, video.fps, method.window_spec(CTX.window))
    if granularity == "chunk":
        length = round(seconds * video.fps)
        want_units = -(-video.num_frames // length)
        want_unit = [int(c) // length for c in grid.centres]
    elif granularity == "video":
        want_units, want_unit = 1, [0] * len(grid)
    else:
        want_units, want_unit = len(grid), list(range(len(grid)))
    assert method.model().rows_generated == want_units  # one generator row per unit
    assert rec["adaptation"]["units"] == want_units
    assert rec["adaptation"]["window_unit"] == want_unit
    names = [r.lora.name for r in spy.requests if r.lora is not None]
    assert len(names) == len(grid)
    # windows of one unit share its adapter, windows of different units do not
    by_unit: dict[int, set[str]] = {}
    for u, n in zip(want_unit, names, strict=True):
        by_unit.setdefault(u, set()).add(n)
    assert all(len(v) == 1 for v in by_unit.values())
    assert len({next(iter(v)) for v in by_unit.values()}) == want_units


def _trained_like(model: CopraModel, seed: int = 3) -> None:
    """Non-zero B heads (as after training), deterministic."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".2." in name and "B|" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def _spec(engine: HFEngine, variant: str = "copra", prior: bool = True) -> CopraSpec:
    text = engine.loaded.model.config.get_text_config()
    return CopraSpec(variant, GeneratorConfig(rank=2, width=32, heads=4, use_prior=prior),
                     engine.lora_targets(), int(text.hidden_size),
                     int(text.num_hidden_layers), "tiny-qwen2-vl")


def test_checkpoint_round_trip_and_checks(engine: HFEngine, video: VideoSample,
                                          tmp_path: Path) -> None:
    model = CopraModel(_spec(engine), seed=1)
    _trained_like(model)
    model.save(tmp_path / "ck", {"train": {"note": "test"}})
    method = CopraMethod(engine, checkpoint=str(tmp_path / "ck"))
    loaded = method.model()
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k
    assert method.describe()["checkpoint_sha256"]
    trained = method.predict(video, CTX)
    assert trained["scores"] != FrozenBaseline(engine).predict(video, CTX)["scores"]
    with pytest.raises(CheckpointError, match="holds a 'copra' model"):
        CopraStatic(engine, checkpoint=str(tmp_path / "ck")).model()
    with pytest.raises(CheckpointError, match="--method copra"):
        METHODS.get("copra-noprior")(engine, checkpoint=str(tmp_path / "ck")).model()  # type: ignore[operator]
    other = HFEngine(model="tiny-internvl", device="cpu")
    try:
        with pytest.raises(CheckpointError, match="trained for backbone 'tiny-qwen2-vl'"):
            CopraMethod(other, checkpoint=str(tmp_path / "ck")).model()
    finally:
        other.close()
    (tmp_path / "ck" / "copra.json").write_text('{"format": "something else"}')
    with pytest.raises(CheckpointError, match="format"):
        CopraMethod(engine, checkpoint=str(tmp_path / "ck")).model()
    with pytest.raises(CheckpointError, match="not a directory"):
        CopraMethod(engine, checkpoint=str(tmp_path / "missing"))


def test_exported_chunk_adapters_give_the_same_answers(engine: HFEngine, video: VideoSample,
                                                       tmp_path: Path) -> None:
    """The vllm route: each chunk's adapter written as a PEFT directory, read back."""
    model = CopraModel(_spec(engine), seed=2)
    _trained_like(model, 4)
    model.save(tmp_path / "ck")
    method = CopraMethod(engine, checkpoint=str(tmp_path / "ck"), granularity="chunk",
                         chunk_seconds=2.0)
    spy = Spy(engine)
    method.engine = spy
    method.predict(video, CTX)
    refs = {r.lora.name: r.lora for r in spy.requests if r.lora is not None}
    assert len(refs) > 1
    store = LoRAStore()
    try:
        for ref in refs.values():
            exported = store.register(ref.name, tensors=ref.tensors)
            req = next(r for r in spy.requests if r.lora is not None and r.lora.name == ref.name)
            from dataclasses import replace

            a = engine.generate([req])[0].completions[0]
            b = engine.generate([replace(req, lora=LoRARef(ref.name + "-dir",
                                                           path=str(exported.path)))])
            np.testing.assert_allclose(a.target_logprobs[0]["Yes"],
                                       b[0].completions[0].target_logprobs[0]["Yes"],
                                       atol=1e-5)
    finally:
        store.close()


def test_conditioning_tokens_by_hand() -> None:
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(3, 2, 2)  # T=3, S=2, D=2
    tok, kinds = conditioning_tokens(x)
    assert tok.shape == (3 * 2 + 2 * 2, 2)
    assert kinds.tolist() == [0] * 6 + [1] * 4
    assert torch.equal(tok[:6], x.reshape(6, 2))
    assert torch.equal(tok[6:], torch.full((4, 2), 4.0))  # x[t+1] - x[t] = S * D = 4
    one, k1 = conditioning_tokens(x[:1])
    assert one.shape == (2, 2) and k1.tolist() == [0, 0]


def test_zero_shot_language_task(engine: HFEngine, tmp_path: Path) -> None:
    task = TASKS.get("vru_accident_qa")()  # type: ignore[operator]
    sample = task.load(None, "sample")[0]
    ctx = RunContext(batch_size=8, frame_plan=task.frame_plan)
    frozen = FrozenBaseline(engine, answer_max_new_tokens=4).predict(sample, ctx)
    spy = Spy(engine)
    copra = CopraMethod(spy, answer_max_new_tokens=4, **SMALL).predict(sample, ctx)
    assert copra["responses"] == frozen["responses"]  # untrained: the frozen answers
    loras = {r.lora.name for r in spy.requests if r.lora is not None}
    assert len(loras) == 1 and len(spy.requests) == len(sample.queries)


def test_engine_without_visual_tokens_gets_a_conditioner(engine: HFEngine,
                                                         video: VideoSample) -> None:
    """The vllm case: the engine serves LoRA but has no visual tokens; COPRA loads the same
    model with ``hf`` for the conditioning and still sends its adapters to the engine."""
    from dataclasses import replace

    class NoTokens(Spy):
        def __init__(self, inner: HFEngine) -> None:
            super().__init__(inner)
            self.capabilities = replace(inner.capabilities, visual_tokens=False)

        def visual_tokens(self, clips: Sequence[np.ndarray]) -> list[Any]:
            raise AssertionError("must not be asked")

    eng = NoTokens(engine)
    method = CopraMethod(eng, conditioner_device="cpu", granularity="video", **SMALL)
    rec = method.predict(video, CTX)
    cond = method.conditioner()
    try:
        assert cond is not eng and isinstance(cond, HFEngine)
        assert cond.resolved.path == engine.resolved.path
        assert rec["adaptation"]["adapters_generated"] == 1
        assert all(r.lora is not None for r in eng.requests)
    finally:
        cond.close()


def test_checkpoint_brings_its_question_and_think_mode_is_refused(engine: HFEngine,
                                                                   video: VideoSample,
                                                                   tmp_path: Path) -> None:
    model = CopraModel(_spec(engine), seed=1)
    model.save(tmp_path / "ck", {"train": {"config": {"answer_mode": "constrained"},
                                           "user_prompt": "Is this clip abnormal? Yes or No."}})
    spy = Spy(engine)
    CopraMethod(spy, checkpoint=str(tmp_path / "ck")).predict(video, CTX)
    texts = {p.text for r in spy.requests for p in r.messages[-1].content if hasattr(p, "text")}
    assert texts == {"Is this clip abnormal? Yes or No."}
    model.save(tmp_path / "think", {"train": {"config": {"answer_mode": "think"}}})
    with pytest.raises(CheckpointError, match="answer_mode='think'"):
        CopraMethod(engine, checkpoint=str(tmp_path / "think")).model()
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        CopraMethod(engine, checkpoint=str(tmp_path / "ck")).model()


def test_static_lora_is_built_once(engine: HFEngine, video: VideoSample) -> None:
    spy = Spy(engine)
    method = CopraStatic(spy, **SMALL)
    rec = method.predict(video, CTX)
    assert method.model().rows_generated == 1
    assert len({r.lora.name for r in spy.requests if r.lora is not None}) == 1
    assert rec["adaptation"]["variant"] == "static"
