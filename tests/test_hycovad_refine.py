"""HyCoVAD's caption refinement (§3.3.2): sentence chunks (Eq. 8-9), pooling (Eq. 11), the local
and global windows (Eq. 7), the ridge alignment, and the MiniLM text encoder."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import numpy as np
import pytest

from methods.hycovad.refine import (
    MiniLMEncoder,
    TextEncoder,
    apply_alignment,
    caption_embedding,
    chunk_count,
    embed_captions,
    fit_alignment,
    make_text_encoder,
    minilm_path,
    refine_captions,
    sentence_chunks,
    split_sentences,
    window_candidates,
)
from tests.test_hycovad_rules import CAPTION_EXAMPLE  # the paper's Appendix C caption

# ------------------------------------------------------------------ sentences and chunks


def test_split_sentences() -> None:
    text = (
        "In the image, there is a man. Mr. J. Smith walks at 3.5 km/h, e.g. slowly! Is he ok? "
        "\"Yes.\" He said.\nA line without a period\n\n  Lane 2. The car stops."
    )
    assert split_sentences(text) == [
        "In the image, there is a man.",
        "Mr. J. Smith walks at 3.5 km/h, e.g. slowly!",
        "Is he ok?",
        "\"Yes.\"",
        "He said.",
        "A line without a period",
        "Lane 2.",
        "The car stops.",
    ]
    assert split_sentences("") == [] and split_sentences("  \n ") == []
    assert len(split_sentences(CAPTION_EXAMPLE)) == 6


@pytest.mark.parametrize(
    ("n", "m", "o", "k"),
    [
        (5, 3, 1, 2),  # floor(2/2) + 1
        (6, 3, 1, 2),  # floor(3/2) + 1: s6 is dropped
        (7, 3, 1, 3),  # floor(4/2) + 1
        (3, 3, 1, 1),  # floor(0/2) + 1
        (2, 3, 1, 1),  # N < m: one chunk with everything
        (1, 3, 2, 1),
        (0, 3, 1, 0),
        (10, 4, 3, 7),  # floor(6/1) + 1
        (10, 4, 1, 3),  # floor(6/3) + 1
        (9, 2, 1, 8),   # floor(7/1) + 1
    ],
)
def test_chunk_count(n: int, m: int, o: int, k: int) -> None:
    assert chunk_count(n, m, o) == k
    assert len(sentence_chunks([f"s{i}." for i in range(1, n + 1)], m, o)) == k


@pytest.mark.parametrize(("m", "o"), [(3, 0), (3, 3), (2, 5), (1, 1)])
def test_chunk_count_validation(m: int, o: int) -> None:
    with pytest.raises(ValueError):
        chunk_count(5, m, o)
    with pytest.raises(ValueError):
        chunk_count(-1, 3, 1)


def test_sentence_chunks_contents() -> None:
    s = ["s1.", "s2.", "s3.", "s4.", "s5.", "s6.", "s7."]
    # Eq. 8, m=3, o=1: starts 1, 3, 5 (1-based)
    assert sentence_chunks(s, 3, 1) == ["s1. s2. s3.", "s3. s4. s5.", "s5. s6. s7."]
    # N=6: starts 1, 3; s6 is not covered (Eq. 9 drops it)
    assert sentence_chunks(s[:6], 3, 1) == ["s1. s2. s3.", "s3. s4. s5."]
    assert sentence_chunks(s[:5], 4, 2) == ["s1. s2. s3. s4."]
    assert sentence_chunks(s[:2], 3, 1) == ["s1. s2."]
    assert sentence_chunks([], 3, 1) == []


def test_caption_embedding_pooling() -> None:
    z = np.array([[3.0, 0.0, 0.0], [1.0, 2.0, -2.0]])
    # mean = [2, 1, -1], norm sqrt(6)
    np.testing.assert_allclose(caption_embedding(z, "mean"), np.array([2, 1, -1]) / np.sqrt(6),
                               rtol=1e-6)
    # max = [3, 2, 0], norm sqrt(13)
    np.testing.assert_allclose(caption_embedding(z, "max"), np.array([3, 2, 0]) / np.sqrt(13),
                               rtol=1e-6)
    assert caption_embedding(z).dtype == np.float32
    with pytest.raises(ValueError):
        caption_embedding(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        caption_embedding(z, "sum")  # type: ignore[arg-type]


# ----------------------------------------------------------------------- refine windows


def test_window_candidates() -> None:
    frames = [0, 10, 20, 30, 40, 50, 60, 70]
    assert window_candidates(frames, 30, 3) == [20, 30, 40]
    assert window_candidates(frames, 30, 4) == [10, 20, 30, 40]  # 2 before, t, 1 after
    assert window_candidates(frames, 30, 1) == [30]
    assert window_candidates(frames, 0, 5) == [0, 10, 20]  # cut at the start, not shifted
    assert window_candidates(frames, 70, 10) == [20, 30, 40, 50, 60, 70]  # 5 before, t, 4 after
    # an uncaptioned target keeps its own slot: window 4 -> 2 before, t, 1 after
    assert window_candidates(frames, 25, 4) == [10, 20, 30]
    assert window_candidates(frames, 25, 1) == []
    with pytest.raises(ValueError):
        window_candidates(frames, 30, 0)


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def test_refine_captions_local_global_and_ties() -> None:
    captions = {0: "c0", 10: "c10", 20: "c20", 30: "c30", 40: "c40"}
    cap = {0: _unit(1, 0, 0), 10: _unit(0, 1, 0), 20: _unit(0, 0, 1), 30: _unit(1, 1, 0),
           40: _unit(0.9, 0.1, 0)}
    img = {
        20: _unit(1, 0, 0),  # best overall: frame 0 (cos 1); window 3 sees 10, 20, 30
        30: _unit(0, 0, 1),  # frame 20 matches exactly and is in the window
        10: _unit(0, 1, 1),  # tie between 10 (own) and 20: own caption wins
        40: _unit(1, 1, 1),  # last frame: window 3 = 30, 40; cos 0.816 vs 0.638 -> 30
    }
    local = refine_captions(captions, img, cap, [20, 30, 10, 40], window=3, mode="local")
    # frame 20: cos with 10: 0, 20: 0, 30: 1/sqrt2 -> 30
    assert local[20] == (30, "c30")
    assert local[30] == (20, "c20")
    assert local[10] == (10, "c10")
    assert local[40] == (30, "c30")
    glob = refine_captions(captions, img, cap, [20], window=3, mode="global")
    assert glob[20] == (0, "c0")
    # window 1: only the own caption
    assert refine_captions(captions, img, cap, [20], window=1)[20] == (20, "c20")


def test_refine_captions_tie_without_own_caption_goes_to_nearest_then_earlier() -> None:
    captions = {0: "a", 10: "b", 30: "c", 50: "d"}
    e = _unit(1, 0)
    cap = {0: e, 10: e, 30: e, 50: _unit(0, 1)}
    img = {20: e}  # frame 20 has no caption; 10 and 30 tie at distance 10 -> earlier (10)
    assert refine_captions(captions, img, cap, [20], window=5, mode="local")[20] == (10, "b")
    img2 = {25: e}  # 30 is nearer than 10
    assert refine_captions(captions, img2, cap, [25], window=5, mode="global")[25] == (30, "c")


def test_refine_captions_errors() -> None:
    captions = {0: "a", 10: "b"}
    cap = {0: _unit(1, 0), 10: _unit(0, 1)}
    with pytest.raises(ValueError, match="image embedding"):
        refine_captions(captions, {}, cap, [0], window=3)
    with pytest.raises(ValueError, match="caption embeddings"):
        refine_captions(captions, {0: _unit(1, 0)}, {0: cap[0]}, [0], window=3)
    with pytest.raises(ValueError, match="mode"):
        refine_captions(captions, {0: _unit(1, 0)}, cap, [0], window=3, mode="all")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- alignment


def test_fit_alignment_recovers_a_known_linear_map() -> None:
    rng = np.random.default_rng(0)
    w_true = rng.normal(size=(6, 4))
    x = rng.normal(size=(50, 6))
    y = x @ w_true
    np.testing.assert_allclose(fit_alignment(x, y, 0.0), w_true, atol=1e-10)
    np.testing.assert_allclose(fit_alignment(x, y, 1e-9), w_true, atol=1e-7)
    # ridge > 0 against the normal equations solved by numpy lstsq on the augmented system
    lam = 2.5
    x_aug = np.vstack([x, np.sqrt(lam) * np.eye(6)])
    y_aug = np.vstack([y + rng.normal(size=y.shape), np.zeros((6, 4))])
    w_ref = np.linalg.lstsq(x_aug, y_aug, rcond=None)[0]
    np.testing.assert_allclose(fit_alignment(x, y_aug[:50], lam), w_ref, atol=1e-10)


def test_fit_alignment_dual_form_when_fewer_frames_than_features() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 12))
    y = rng.normal(size=(5, 3))
    lam = 0.7
    x_aug = np.vstack([x, np.sqrt(lam) * np.eye(12)])
    y_aug = np.vstack([y, np.zeros((12, 3))])
    w_ref = np.linalg.lstsq(x_aug, y_aug, rcond=None)[0]
    w = fit_alignment(x, y, lam)
    assert w.shape == (12, 3)
    np.testing.assert_allclose(w, w_ref, atol=1e-10)
    mapped = apply_alignment(x, w)
    np.testing.assert_allclose(np.linalg.norm(mapped, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        fit_alignment(x, y[:4], lam)
    with pytest.raises(ValueError):
        fit_alignment(x, y, -1.0)


# ------------------------------------------------------------------------ text encoders


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLMEncoder]:
    yield MiniLMEncoder(device="cpu", batch_size=2)


def test_minilm_normalised_384d_and_ranks_paraphrase(minilm: MiniLMEncoder) -> None:
    texts = ["A man is riding a bicycle.", "Someone rides a bike.", "The stock market fell today."]
    e = minilm.embed(texts)  # batch_size 2: two batches with different padding
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.3
    assert minilm.embed([]).shape == (0, 384)
    assert isinstance(minilm, TextEncoder)


def test_minilm_matches_sentence_transformers(minilm: MiniLMEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    ref_model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    texts = ["A man is riding a bicycle.", CAPTION_EXAMPLE, "hi"]
    ref = ref_model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.embed(texts), ref, atol=2e-5)


def test_embed_captions_pools_chunks(minilm: MiniLMEncoder) -> None:
    captions = {0: CAPTION_EXAMPLE, 10: "", 20: "Two people fight."}
    out = embed_captions(captions, minilm, m=3, o=1, pool="mean")
    # CAPTION_EXAMPLE has 6 sentences -> chunks s1-s3, s3-s5 (Eq. 9, s6 dropped)
    s = split_sentences(CAPTION_EXAMPLE)
    chunks = minilm.embed([" ".join(s[0:3]), " ".join(s[2:5])])
    expected = chunks.mean(axis=0) / np.linalg.norm(chunks.mean(axis=0))
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    np.testing.assert_allclose(out[20], minilm.embed(["Two people fight."])[0], atol=1e-5)
    assert out[10].shape == (384,)


class _ToyEncoder:
    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)


def test_make_text_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_text_encoder("minilm"), MiniLMEncoder)
    mod = types.ModuleType("toy_encoders_for_test")
    mod.Toy = _ToyEncoder  # type: ignore[attr-defined]
    mod.instance = _ToyEncoder()  # type: ignore[attr-defined]
    mod.factory = lambda: _ToyEncoder()  # type: ignore[attr-defined]
    mod.bad = lambda: 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toy_encoders_for_test", mod)
    for name in ("Toy", "instance", "factory"):
        enc = make_text_encoder(f"toy_encoders_for_test:{name}")
        assert enc.embed(["a", "b"]).shape == (2, 2)
    assert make_text_encoder("toy_encoders_for_test:instance") is mod.instance
    with pytest.raises(TypeError):
        make_text_encoder("toy_encoders_for_test:bad")
    with pytest.raises(ValueError):
        make_text_encoder("nonsense")
