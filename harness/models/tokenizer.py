"""An offline, deterministic Qwen-style tokenizer for the tiny test models.

A byte-level BPE (the same family as Qwen's) trained with the ``tokenizers`` library on a small
corpus generated in code, followed by the Qwen special tokens in Qwen's order. Every byte
sequence is encodable (byte-level alphabet), and the answer words a video-anomaly method reads a
probability from (``yes``/``no``, capitalised, with and without a leading space) are single
tokens.

Ids: ``0 .. bpe_size-1`` are the BPE vocabulary, then :data:`SPECIAL_TOKENS` in order, so
``<|endoftext|>`` is ``bpe_size``; :func:`special_token_ids` gives the mapping the model
config must agree with.
"""

from __future__ import annotations

import random

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

#: Qwen2-VL's special tokens, in Qwen's id order (Qwen: 151643 .. 151656).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: InternVL's image markers, appended after the Qwen specials for the tiny InternVL model.
INTERNVL_TOKENS: tuple[str, ...] = ("<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<image>")

#: Words that must encode to exactly one token (with and without a leading space).
SINGLE_TOKEN_WORDS: tuple[str, ...] = (
    "yes", "no", "Yes", "No", "YES", "NO", "normal", "abnormal", "anomaly", "Anomaly",
    "true", "false", "True", "False", "A", "B", "C", "D",
)  # fmt: skip

_WORDS_TEXT = """
the a an of to in on at by for with from into over under near behind after before during while
is are was were be been being has have had do does did can could will would should may might
this that these those there here what which who whom whose when where why how not only also
video frame frames clip clips scene scenes camera cameras street road car cars truck bus bike
person people man woman child crowd group walking running standing sitting falling fighting
fight robbery theft shoplifting assault arson explosion accident shooting vandalism burglary
abuse arrest stealing fire smoke gun knife weapon police officer store shop door window wall
night day light dark parking lot station platform train subway campus hallway corridor entrance
exit building street corner traffic intersection crossing sidewalk park bench tree grass water
event events activity action actions motion movement object objects vehicle vehicles speed
slow fast sudden suddenly normal abnormal anomaly anomalous anomalies usual unusual typical
suspicious dangerous safe violent peaceful calm chaotic quiet busy empty full left right up down
describe answer question questions score probability likely unlikely certain uncertain maybe
yes no Yes No YES NO true false True False is there any sign of does show shows showing
timestamp second seconds minute minutes start end begin beginning middle first last next
previous one two three four five six seven eight nine ten many few several some all none each
red blue green white black yellow gray brown large small big tiny tall short long wide narrow
image images picture pictures pixel region area background foreground center top bottom side
look looks looking see seen watch watching detect detected detection monitor monitoring system
surveillance security guard alarm emergency ambulance injury injured help helping call calling
throw throwing hit hitting push pushing chase chasing climb climbing jump jumping drop dropping
break breaking enter entering leave leaving open opening close closing carry carrying bag box
please respond with single word only output format json label labels class category reason
because therefore however although unless until since then than so very more most less least
assistant user system helpful you your we our they their it its he she him her his them
"""


def _corpus(seed: int = 0, n_lines: int = 4000) -> list[str]:
    """Deterministic pseudo-sentences: every vocabulary word many times, answers often."""
    rng = random.Random(seed)
    words = sorted(set(_WORDS_TEXT.split()) | set(SINGLE_TOKEN_WORDS))
    lines: list[str] = []
    for w in words:  # each word at line start and after a space, many times
        lines.extend([f"{w} {w}. {w}, {w}?"] * 6)
    for w in SINGLE_TOKEN_WORDS:
        lines.extend([f"{w}", f"Answer: {w}", f"{w}\n{w}", f"'{w}' or {w}"] * 30)
    for i in range(n_lines):
        k = rng.randint(4, 14)
        sent = " ".join(rng.choice(words) for _ in range(k))
        lines.append(f"{sent[0].upper()}{sent[1:]}. Frame {i % 64} at {i % 300} seconds.")
    return lines


def build_bpe(vocab_size: int = 2048, seed: int = 0) -> Tokenizer:
    """Train the byte-level BPE (without special tokens). Deterministic for a given seed."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    return tok


def build_tokenizer(extra_special: tuple[str, ...] = (), seed: int = 0) -> Tokenizer:
    """The full tokenizer: trained BPE + :data:`SPECIAL_TOKENS` (+ ``extra_special``)."""
    tok = build_bpe(seed=seed)
    specials = [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    specials += [AddedToken(t, special=True, normalized=False) for t in extra_special]
    tok.add_special_tokens(specials)
    for w in SINGLE_TOKEN_WORDS:
        for text in (w, " " + w):
            n = len(tok.encode(text).ids)
            if n != 1:
                raise RuntimeError(f"tiny tokenizer: {text!r} is {n} tokens, expected 1")
    return tok


def special_token_ids(tok: Tokenizer) -> dict[str, int]:
    """Map every special token string to its id (raises if one is missing)."""
    out: dict[str, int] = {}
    for t in SPECIAL_TOKENS + INTERNVL_TOKENS:
        i = tok.token_to_id(t)
        if i is not None:
            out[t] = i
    missing = [t for t in SPECIAL_TOKENS if t not in out]
    if missing:
        raise RuntimeError(f"tokenizer lacks special tokens {missing}")
    return out


#: A Qwen-style ChatML template (written for vad-eval). Content is a string or a list of parts
#: ``{"type": "text", "text": ...}``, ``{"type": "image"}``, ``{"type": "video"}``.
QWEN_CHAT_TEMPLATE = (
    "{%- if not messages or messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part -%}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in part -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

#: InternVL-style template: images render as ``<image>``, videos as ``<video>``; the engine
#: expands them (``<img><IMG_CONTEXT>...</img>`` per image / per frame).
INTERNVL_CHAT_TEMPLATE = QWEN_CHAT_TEMPLATE.replace(
    "<|vision_start|><|image_pad|><|vision_end|>", "<image>\\n"
).replace("<|vision_start|><|video_pad|><|vision_end|>", "<video>\\n")

#: Plain ChatML (written for vad-eval): the ``hf``/``vllm`` engines' fallback for text-only
#: models whose directory has no chat template. The tokenizer's BOS token (when it has one:
#: Llama, Mistral, Gemma) comes first, since rendered prompts are tokenised without special
#: tokens; no default system prompt; content is a string or a list of ``{"type": "text"}``
#: parts (other parts render as nothing: the engine rejects them before rendering).
CHATML_CHAT_TEMPLATE = (
    "{%- if bos_token -%}{{ bos_token }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if 'text' in part -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
