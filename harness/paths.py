"""Where vad-eval keeps generated artefacts (sample world, tiny models, caches).

``VAD_EVAL_CACHE`` overrides the default ``~/.cache/vad-eval``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root cache directory (created on demand)."""
    root = Path(os.environ.get("VAD_EVAL_CACHE", Path.home() / ".cache" / "vad-eval"))
    root.mkdir(parents=True, exist_ok=True)
    return root
