"""Word tokenisation as NLTK's ``word_tokenize`` does it, without the Punkt download.

``nltk.word_tokenize(text)`` splits ``text`` into sentences with the trained English Punkt
model (``punkt_tab``, an NLTK download, not on PyPI) and each sentence into words with
``NLTKWordTokenizer`` (improved Treebank rules). Here the sentence splitter is
``PunktSentenceTokenizer()`` with no trained parameters: no abbreviation list and no
collocations, so a period that ends a token ends a sentence unless it is part of the token.
This reproduces the official VRU-Accident METEOR (0.285 on the Gemini captions). It differs
from the trained model on known abbreviations: "Dr. Smith left." gives "Dr", ".", "Smith",
"left", "." here, where the trained model keeps "Dr." whole. The behaviour is fixed: an
installed Punkt model is never picked up.

Punctuation removal (``drop_punct``) keeps the official VRU-Accident rule: a token is dropped
when ``token in string.punctuation``, a *substring* test. Single punctuation characters go
(and so would a run of consecutive ``string.punctuation`` characters such as ``"()"``, which
NLTK's tokenizer practically never produces); the multi-character tokens NLTK makes for
quotes and ellipses (``"``"``, ``"''"``, ``"..."``) are kept.
"""

from __future__ import annotations

import string

from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

__all__ = ["word_tokenize"]

_SENTENCES = PunktSentenceTokenizer()
_WORDS = NLTKWordTokenizer()


def word_tokenize(text: str, *, lowercase: bool = False, drop_punct: bool = False) -> list[str]:
    """Tokens of ``text``: untrained Punkt sentences, then ``NLTKWordTokenizer`` per sentence.

    ``lowercase`` lower-cases the text before tokenising (Vad-R1); ``drop_punct`` removes the
    tokens that are ``in string.punctuation`` (VRU-Accident, see the module docstring).
    """
    if lowercase:
        text = text.lower()
    tokens = [tok for sent in _SENTENCES.tokenize(text) for tok in _WORDS.tokenize(sent)]
    if drop_punct:
        tokens = [tok for tok in tokens if tok not in string.punctuation]
    return tokens
