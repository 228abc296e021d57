"""Shared fixtures.

``reference_dir``: the real public artifacts in ``../shared/data/reference`` (the one way tests
find them). ``VAD_EVAL_REFERENCE`` overrides the location. Under ``CI=true`` a missing directory
is a failure, elsewhere the tests that need it are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

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
