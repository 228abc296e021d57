"""The ``hf`` engine on the tiny models: preprocessing against transformers' PIL processor,
generation, raw log-probs against an independent teacher-forced pass, batch invariance,
seeded sampling, embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch

from harness.engines.base import (
    EngineError,
    ImagePart,
    LoRARef,
    Message,
    Request,
    SamplingParams,
    VideoPart,
)
from harness.engines.hf import HFEngine
from harness.engines.preprocess import (
    QwenVisionSpec,
    normalize_frames,
    qwen_image,
    qwen_video,
    resize_frames,
)

FAMILIES = ("tiny-qwen2-vl", "tiny-qwen2.5-vl", "tiny-internvl")
_ENGINES: dict[str, HFEngine] = {}


@pytest.fixture(scope="session")
def engines() -> Iterator[dict[str, HFEngine]]:
    yield _ENGINES
    for e in _ENGINES.values():
        e.close()


@pytest.fixture(params=FAMILIES)
def engine(request: pytest.FixtureRequest, engines: dict[str, HFEngine]) -> HFEngine:
    mid = request.param
    if mid not in engines:
        engines[mid] = HFEngine(model=mid, device="cpu", batch_size=4)
    return engines[mid]


@pytest.fixture
def qwen(engines: dict[str, HFEngine]) -> HFEngine:
    if "tiny-qwen2-vl" not in engines:
        engines["tiny-qwen2-vl"] = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=4)
    return engines["tiny-qwen2-vl"]


def _frames(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _video_request(n_frames: int, size: int, frame_seed: int, text: str = "Anomaly? yes or no",
                   **sampling: object) -> Request:  # fmt: skip
    sp = SamplingParams(**{"max_new_tokens": 6, "logprobs": 3, **sampling})  # type: ignore[arg-type]
    msg = Message.user(VideoPart(_frames(n_frames, size, frame_seed), fps=2.0), text)
    return Request((msg,), sp, request_id=f"r{frame_seed}")


def _mixed_requests() -> list[Request]:
    return [
        _video_request(4, 112, 1),
        _video_request(3, 84, 2, "Describe the scene in the video, then answer yes or no."),
        _video_request(7, 140, 3, "Is it normal?"),
        Request(
            (Message.user(ImagePart(_frames(1, 98, 4)[0]), "What is shown?"),),
            SamplingParams(max_new_tokens=6, logprobs=3),
            request_id="img",
        ),  # fmt: skip
    ]


# -- registry / construction --------------------------------------------------------------------
def test_registered_as_hf() -> None:
    from harness.registry import ENGINES

    assert ENGINES.get("hf") is HFEngine
    assert HFEngine.name == "hf"
    caps = HFEngine.capabilities
    assert caps.logprobs and caps.video and caps.images and caps.embeddings and caps.lora
    assert caps.visual_tokens


def test_describe_and_resolved(qwen: HFEngine) -> None:
    d = qwen.describe()
    assert d["engine"] == "hf" and d["model"] == "tiny-qwen2-vl" and d["device"] == "cpu"
    assert d["dtype"] == "float32" and d["parameters"] > 0
    assert qwen.resolved.is_tiny and qwen.resolved.family == "qwen2_vl"


# -- preprocessing ------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(97, 150), (112, 112), (300, 41), (640, 480), (20, 30)])
def test_image_preprocessing_matches_transformers_pil(hw: tuple[int, int]) -> None:
    from transformers import Qwen2VLImageProcessorPil

    img = np.random.default_rng(hw[0]).integers(0, 256, (*hw, 3), dtype=np.uint8)
    spec = QwenVisionSpec(max_pixels=200 * 200)
    ref = Qwen2VLImageProcessorPil(min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)(
        images=[img], return_tensors="np"
    )
    mine = qwen_image(img, spec)
    assert mine.grid_thw == tuple(int(x) for x in ref["image_grid_thw"][0])
    assert mine.pixel_values.dtype == np.float32
    np.testing.assert_allclose(mine.pixel_values, ref["pixel_values"], rtol=0, atol=1e-6)


def test_video_patch_layout_and_padding() -> None:
    spec = QwenVisionSpec()
    frames = _frames(3, 56, 0)  # odd: padded with a copy of frame 2
    vi = qwen_video(frames, spec)
    assert vi.grid_thw == (2, 4, 4) and vi.num_tokens == 2 * 4 * 4 // 4
    x = normalize_frames(resize_frames(frames, 56, 56), spec.image_mean, spec.image_std)
    x = np.concatenate([x, x[-1:]])  # (4, 3, 56, 56)
    p = 14
    row = 0
    for t in range(2):  # rows: t, then 2x2 merge blocks row-major, then patches in the block
        for bh in range(2):
            for bw in range(2):
                for ih in range(2):
                    for iw in range(2):
                        r, c = (bh * 2 + ih) * p, (bw * 2 + iw) * p
                        cube = x[2 * t : 2 * t + 2, :, r : r + p, c : c + p]  # (T, C, p, p)
                        expect = cube.transpose(1, 0, 2, 3).reshape(-1)
                        np.testing.assert_array_equal(vi.pixel_values[row], expect)
                        row += 1
    # a still image equals a two-frame video of that image
    img = qwen_image(frames[0], spec)
    two = qwen_video(np.stack([frames[0], frames[0]]), spec)
    np.testing.assert_array_equal(img.pixel_values, two.pixel_values)


def test_prompt_expands_placeholders(qwen: HFEngine) -> None:
    req = _video_request(10, 112, 0)
    enc = qwen.encoder.encode(req)
    cfg = qwen.loaded.model.config
    n_video = sum(1 for t in enc.input_ids if t == cfg.video_token_id)
    assert enc.video_grids == [(5, 8, 8)] and n_video == 5 * 8 * 8 // 4
    assert enc.mm_token_type_ids.count(2) == n_video
    assert enc.video_pixels[0].shape == (5 * 8 * 8, 3 * 2 * 14 * 14)


# -- generation ---------------------------------------------------------------------------------
def test_greedy_generation_with_video(engine: HFEngine) -> None:
    req = _video_request(4, 112, 0, max_new_tokens=7)
    (resp,) = engine.generate([req])
    assert resp.request_id == req.request_id and len(resp.completions) == 1
    c = resp.completions[0]
    assert c.finish_reason in ("stop", "length")
    if c.finish_reason == "length":
        assert len(c.token_ids) == 7
    else:
        assert c.token_ids[-1] in engine.eos_ids
    assert len(c.token_logprobs) == len(c.top_logprobs) == len(c.token_ids)
    assert isinstance(c.text, str)


def test_eos_and_stop_strings(qwen: HFEngine) -> None:
    req = _video_request(4, 112, 5, max_new_tokens=8)
    full = qwen.generate([req])[0].completions[0]
    assert full.finish_reason == "length" and len(full.token_ids) == 8
    saved = qwen.eos_ids
    try:  # pretend the 3rd generated token is an EOS token
        qwen.eos_ids = saved | {full.token_ids[2]}
        c = qwen.generate([req])[0].completions[0]
    finally:
        qwen.eos_ids = saved
    first = full.token_ids.index(full.token_ids[2])
    assert c.finish_reason == "stop" and c.token_ids == full.token_ids[: first + 1]
    stop = full.text[len(full.text) // 2 :][:3]
    assert stop.strip()
    req2 = _video_request(4, 112, 5, max_new_tokens=8, stop=(stop,))
    c2 = qwen.generate([req2])[0].completions[0]
    assert c2.finish_reason == "stop" and c2.text == full.text[: full.text.index(stop)]
    assert stop not in c2.text and len(c2.token_ids) <= len(full.token_ids)


def _teacher_forced_logprobs(engine: HFEngine, req: Request, gen: list[int]) -> np.ndarray:
    """Independent reference: one plain forward over prompt + generated tokens, no cache, no
    padding, positions computed by the model itself."""
    enc = engine.encoder.encode(req)
    ids = torch.tensor([enc.input_ids + gen])
    kwargs: dict[str, object] = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if engine.resolved.family == "internvl":
        kwargs["pixel_values"] = torch.from_numpy(np.concatenate(enc.image_pixels))
    else:
        types = enc.mm_token_type_ids + [0] * len(gen)
        kwargs["mm_token_type_ids"] = torch.tensor([types])
        if enc.video_pixels:
            kwargs["pixel_values_videos"] = torch.from_numpy(np.concatenate(enc.video_pixels))
            kwargs["video_grid_thw"] = torch.tensor(enc.video_grids)
        if enc.image_pixels:
            kwargs["pixel_values"] = torch.from_numpy(np.concatenate(enc.image_pixels))
            kwargs["image_grid_thw"] = torch.tensor(enc.image_grids)
        if engine.resolved.family == "qwen2_5_vl" and enc.video_pixels:
            kwargs["second_per_grid_ts"] = torch.tensor(enc.second_per_grid_ts)
    with torch.no_grad():
        logits = engine.loaded.model(**kwargs).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    n = len(enc.input_ids)
    return np.array([float(lp[n - 1 + i, t]) for i, t in enumerate(gen)])


def test_logprobs_match_teacher_forcing(engine: HFEngine) -> None:
    for req in (_video_request(6, 112, 7, max_new_tokens=8, logprobs=4), _mixed_requests()[3]):
        c = engine.generate([req])[0].completions[0]
        ref = _teacher_forced_logprobs(engine, req, c.token_ids)
        np.testing.assert_allclose(c.token_logprobs, ref, atol=1e-4, rtol=0)
        k = req.sampling.logprobs or 0
        for tok, lp, top in zip(c.token_ids, c.token_logprobs, c.top_logprobs, strict=True):
            text = engine._text_of(tok)
            assert text in top and top[text] == pytest.approx(lp, abs=1e-6)
            values = list(top.values())
            assert values == sorted(values, reverse=True)
            assert 1 <= len(top) <= k + 1 and all(v <= 0 for v in values)
        # greedy: the chosen token is the most likely one
        assert all(lp >= max(top.values()) - 1e-6 for lp, top in
                   zip(c.token_logprobs, c.top_logprobs, strict=True))  # fmt: skip


def test_batch_invariance(engine: HFEngine) -> None:
    """Alone (batch 1) vs one left-padded batch of mixed lengths / frame counts / modalities."""
    text_only = Request((Message.user("Anything unusual?"),), SamplingParams(6, logprobs=3))
    reqs = [*_mixed_requests(), text_only]
    engine.batch_size = 1
    try:
        alone = [engine.generate([r])[0] for r in reqs]
        engine.batch_size = 8
        together = engine.generate(reqs)
    finally:
        engine.batch_size = 4
    assert [r.request_id for r in together] == [r.request_id for r in reqs]
    lengths = {len(engine.encoder.encode(r)) for r in reqs}
    assert len(lengths) == len(reqs)  # really padded
    for a, b in zip(alone, together, strict=True):
        ca, cb = a.completions[0], b.completions[0]
        assert ca.token_ids == cb.token_ids and ca.text == cb.text
        np.testing.assert_allclose(ca.token_logprobs, cb.token_logprobs, atol=1e-4, rtol=0)
        for ta, tb in zip(ca.top_logprobs, cb.top_logprobs, strict=True):
            assert ta.keys() == tb.keys()


def test_sampling_seeded_and_n(qwen: HFEngine) -> None:
    req = _video_request(4, 112, 11, temperature=1.0, n=3, seed=123, max_new_tokens=10)
    a = qwen.generate([req])[0].completions
    b = qwen.generate([_video_request(3, 84, 2), req])[1].completions  # other batch company
    assert len(a) == 3
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    assert len({tuple(c.token_ids) for c in a}) > 1  # three different samples
    other = qwen.generate([_video_request(4, 112, 11, temperature=1.0, n=3, seed=124,
                                          max_new_tokens=10)])[0].completions  # fmt: skip
    assert [c.token_ids for c in other] != [c.token_ids for c in a]
    # log-probs are of the raw distribution: equal to the greedy pass on shared prefixes
    greedy = qwen.generate([_video_request(4, 112, 11, max_new_tokens=1)])[0].completions[0]
    for c in a:
        if c.token_ids[0] == greedy.token_ids[0]:
            assert c.token_logprobs[0] == pytest.approx(greedy.token_logprobs[0], abs=1e-5)


def test_unseeded_sampling_uses_engine_seed_plus_index(qwen: HFEngine) -> None:
    req = _video_request(4, 112, 12, temperature=1.0, max_new_tokens=10)
    first = qwen.generate([req, req])
    again = qwen.generate([req, req])
    assert [r.completions[0].token_ids for r in first] == [
        r.completions[0].token_ids for r in again
    ]


def test_tiny_top_p_is_greedy(qwen: HFEngine) -> None:
    greedy = qwen.generate([_video_request(4, 112, 13, max_new_tokens=8)])[0].completions[0]
    nucleus = qwen.generate([_video_request(4, 112, 13, max_new_tokens=8, temperature=1.5,
                                            top_p=1e-6)])[0].completions[0]  # fmt: skip
    assert nucleus.token_ids == greedy.token_ids


def test_greedy_n_copies_and_text_only(qwen: HFEngine) -> None:
    req = Request((Message.system("Be brief."), Message.user("Is a fire an anomaly?")),
                  SamplingParams(max_new_tokens=5, n=2))  # fmt: skip
    (resp,) = qwen.generate([req])
    assert len(resp.completions) == 2
    assert resp.completions[0].token_ids == resp.completions[1].token_ids
    assert resp.completions[0].token_logprobs == []  # logprobs not requested


def test_qwen25_uses_fps(engines: dict[str, HFEngine]) -> None:
    eng = engines.get("tiny-qwen2.5-vl") or HFEngine(model="tiny-qwen2.5-vl", device="cpu")
    engines["tiny-qwen2.5-vl"] = eng
    frames = _frames(8, 56, 3)
    outs = []
    for fps in (0.5, 4.0):
        req = Request((Message.user(VideoPart(frames, fps=fps), "yes?"),),
                      SamplingParams(max_new_tokens=1, logprobs=5))  # fmt: skip
        assert eng.encoder.encode(req).second_per_grid_ts == [2 / fps]
        outs.append(eng.generate([req])[0].completions[0].top_logprobs[0])
    assert outs[0] != outs[1]  # temporal positions depend on fps


def test_missing_lora_directory_is_an_engine_error(qwen: HFEngine) -> None:
    req = Request((Message.user("hi"),), lora=LoRARef(name="x", path="/nope"))
    with pytest.raises(EngineError):
        qwen.generate([req])


# -- embeddings ---------------------------------------------------------------------------------
def test_embed_frames(engine: HFEngine) -> None:
    clips = [_frames(4, 112, 1), _frames(3, 84, 2), _frames(4, 112, 1)]
    emb = engine.embed_frames(clips)
    hidden = engine.loaded.model.config.get_text_config().hidden_size
    assert emb.shape == (3, hidden) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-5)
    assert float(emb[0] @ emb[1]) < 0.9999
    np.testing.assert_allclose(engine.embed_frames(clips[1:2])[0], emb[1], atol=1e-5)


def test_target_token_logprobs_are_exact(qwen: HFEngine) -> None:
    """Target tokens get their full-distribution log-probability at every position, also when
    they are far outside the top-k (reference: the teacher-forced forward pass)."""
    targets = ("yes", " no", "Yes", "not one token at all")
    base = _video_request(4, 112, 3, max_new_tokens=3, logprobs=1)
    req = Request(base.messages, replace(base.sampling, target_tokens=targets))
    c = qwen.generate([req])[0].completions[0]
    assert len(c.target_logprobs) == len(c.token_ids)
    tok = qwen.loaded.tokenizer
    ids = {t: tok.encode(t, add_special_tokens=False) for t in targets}
    assert set(c.target_logprobs[0]) == {t for t, i in ids.items() if len(i) == 1}
    enc = qwen.encoder.encode(req)
    full = torch.tensor([enc.input_ids + c.token_ids])
    types = torch.tensor([enc.mm_token_type_ids + [0] * len(c.token_ids)])
    with torch.no_grad():
        logits = qwen.loaded.model(
            input_ids=full, attention_mask=torch.ones_like(full), mm_token_type_ids=types,
            pixel_values_videos=torch.from_numpy(np.concatenate(enc.video_pixels)),
            video_grid_thw=torch.tensor(enc.video_grids),
        ).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    n = len(enc.input_ids)
    for pos, step in enumerate(c.target_logprobs):
        for text, value in step.items():
            assert value == pytest.approx(float(lp[n - 1 + pos, ids[text][0]]), abs=1e-4)
