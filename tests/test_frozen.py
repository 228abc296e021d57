"""The frozen baseline's three VERA steps, recomputed by hand from a scripted engine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    Request,
    Response,
    VideoPart,
)
from methods.base import RunContext
from methods.frozen import FrozenBaseline
from tasks.base import VideoSample
from tasks.windows import WindowSpec
from tests.videos import frame_ids, write_counting_video


class ScriptedEngine(Engine):
    """P(yes) of a window = (index of its first frame % 10) / 10; features = one-hot of
    (first frame // 40) so windows that start close together are most similar."""

    name = "scripted"
    capabilities = EngineCapabilities(logprobs=True, embeddings=True)

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            self.requests.append(r)
            part = r.messages[-1].content[0]
            assert isinstance(part, VideoPart)
            first = frame_ids(part.frames[:1])[0]
            p = max((first % 10) / 10, 1e-6)
            lps = {"Yes": math.log(p), "No": math.log(max(1 - p, 1e-6))}
            out.append(Response(r.request_id, [Completion("Yes", target_logprobs=[lps])]))
        return out

    def embed_frames(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        feats = np.zeros((len(clips), 8), np.float32)
        for i, clip in enumerate(clips):
            feats[i, frame_ids(clip[:1])[0] // 40] = 1.0
        return feats


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> VideoSample:
    path = write_counting_video(tmp_path_factory.mktemp("f") / "v.mp4", 200)
    return VideoSample("v", 200, fps=2.0, path=path)  # fps 2: 20-frame windows


def _reference(n: int, stride: int, half: int) -> np.ndarray:
    """VERA's steps written out independently with plain numpy."""
    centres = np.arange(0, n, stride)
    starts = np.maximum(centres - half, 0)
    p = np.maximum((starts % 10) / 10.0, 1e-6)
    s1 = p / (p + np.maximum(1 - p, 1e-6))  # P(yes) renormalised over yes/no
    f = np.zeros((len(centres), 8))
    f[np.arange(len(centres)), starts // 40] = 1.0
    sim = f @ f.T
    top_n = int(0.15 * len(centres)) or len(centres)
    s2 = np.empty_like(s1)
    for i in range(len(centres)):
        keep = np.argsort(sim[i], kind="stable")[-top_n:]
        w = np.exp(10 * sim[i, keep])
        s2[i] = (w / w.sum()) @ s1[keep]
    x = np.linspace(-8, 7, 15)
    k = np.exp(-(x**2) / 200)
    s3 = np.convolve(s2, k / k.sum(), mode="same")
    frames = np.repeat(s3, stride)[:n]
    t = np.arange(n)
    return frames * np.exp(-0.5 * ((t - n // 2) / (n // 2)) ** 2)


def test_three_steps_match_hand_computation(sample: VideoSample) -> None:
    engine = ScriptedEngine()
    method = FrozenBaseline(engine)
    ctx = RunContext(batch_size=3, window=WindowSpec(stride=8))
    rec = method.predict(sample, ctx)
    expected = _reference(200, 8, 10)
    np.testing.assert_allclose(rec["scores"], expected, rtol=0, atol=1e-9)
    assert len(rec["windows"]["step1"]) == 25
    assert rec["windows"]["retrieval_features"] == "vlm"
    # every request saw 8 frames of its own window, as VERA's arange draws them
    part = engine.requests[5].messages[-1].content[0]
    assert isinstance(part, VideoPart)
    assert frame_ids(part.frames) == list(np.arange(30, 50, 20 / 8).astype(int))


def test_max_pixels_from_the_run(sample: VideoSample) -> None:
    engine = ScriptedEngine()
    FrozenBaseline(engine).predict(sample, RunContext(max_pixels=32 * 24))
    part = engine.requests[0].messages[-1].content[0]
    assert isinstance(part, VideoPart) and part.frames.shape[1:3] == (24, 32)


def test_window_spec_takes_task_grid() -> None:
    spec = FrozenBaseline(ScriptedEngine(), frames_per_window=4).window_spec(
        WindowSpec(stride=8, window_seconds=5.0))
    assert (spec.stride, spec.window_seconds, spec.frames_per_window, spec.sampler) == (
        8, 5.0, 4, "arange")


def test_bad_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        FrozenBaseline(ScriptedEngine(), stride=3)
