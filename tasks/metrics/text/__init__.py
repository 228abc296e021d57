"""Caption and reasoning text metrics: pure functions, strings in, numbers out.

* :mod:`~tasks.metrics.text.coco`: pycocoevalcap BLEU-1..4 / METEOR 1.5 / ROUGE-L / CIDEr-D
  over a corpus (PTB tokenisation, one Java call each), SPICE when CoreNLP is provided.
* :mod:`~tasks.metrics.text.nltk_metrics`: NLTK METEOR and individual-order sentence BLEU per
  pair (VRU-Accident, Vad-R1).
* :mod:`~tasks.metrics.text.rouge`: ROUGE-1/2/L P/R/F per pair, ``rouge_score`` or pltrdy
  ``rouge``.
* :mod:`~tasks.metrics.text.comet`: COMET from a local checkpoint (optional).
* :mod:`~tasks.metrics.text.tokenize`: NLTK ``word_tokenize`` without the Punkt download.
* :mod:`~tasks.metrics.text.assets`: offline WordNet 3.0 and the Java check.

A metric that cannot run here is returned as :class:`Unavailable` (or listed in
``CocoResult.unavailable``), never as a number.
"""

from __future__ import annotations

from tasks.metrics.text.assets import (
    MissingAssetError,
    Unavailable,
    assets_info,
    java_available,
    wordnet,
)
from tasks.metrics.text.coco import (
    COCO_METRICS,
    CocoResult,
    coco_caption_groups,
    coco_caption_scores,
    spice_score,
)
from tasks.metrics.text.comet import comet_scores
from tasks.metrics.text.nltk_metrics import BLEU_KEYS, bleu_individual, meteor_scores
from tasks.metrics.text.rouge import ROUGE_BACKENDS, ROUGE_KEYS, rouge_prf
from tasks.metrics.text.tokenize import word_tokenize

__all__ = [
    "BLEU_KEYS",
    "COCO_METRICS",
    "ROUGE_BACKENDS",
    "ROUGE_KEYS",
    "CocoResult",
    "MissingAssetError",
    "Unavailable",
    "assets_info",
    "bleu_individual",
    "coco_caption_groups",
    "coco_caption_scores",
    "comet_scores",
    "java_available",
    "meteor_scores",
    "rouge_prf",
    "spice_score",
    "word_tokenize",
    "wordnet",
]
