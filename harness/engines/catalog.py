"""Built-in engines, registered in :data:`harness.registry.ENGINES` on import.

``hf`` -> :class:`harness.engines.hf.HFEngine`. Importing this module imports torch (about 2 s);
transformers and the model weights are loaded only when an engine is constructed.
"""

from __future__ import annotations

from harness.engines.hf import HFEngine
from harness.registry import ENGINES

ENGINES.add("hf", HFEngine)
