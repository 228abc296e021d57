"""Built-in engines, registered in :data:`harness.registry.ENGINES` on import.

``hf`` -> :class:`harness.engines.hf.HFEngine`; ``openai`` ->
:class:`harness.engines.openai.OpenAIEngine` (an OpenAI-compatible HTTP endpoint); ``vllm`` ->
:class:`harness.engines.vllm.VLLMEngine` (offline vLLM, imported on first use). Importing this
module imports torch (about 2 s); transformers and the model weights are loaded only when an
engine is constructed.
"""

from __future__ import annotations

from harness.engines.hf import HFEngine
from harness.engines.openai import OpenAIEngine
from harness.engines.vllm import VLLMEngine
from harness.registry import ENGINES

ENGINES.add("hf", HFEngine)
ENGINES.add("openai", OpenAIEngine)
ENGINES.add("vllm", VLLMEngine)
