"""HyCoVAD validator building blocks: prompts, rule/decision parsing, caption refinement.

Expected values are hand-worked (chunk counts, windows, ties), come from the seed paper's
Appendix C verbatim, or from independent references (numpy lstsq, sentence-transformers).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from methods.hycovad.prompts import (
    DEFAULT_PROMPTS,
    format_aggregate_prompt,
    format_decision_prompt,
    format_rule_prompt,
    load_prompts,
)
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
from methods.hycovad.rules import (
    Decision,
    RuleSet,
    merge_rule_sets,
    parse_decision,
    parse_rules,
)

# ------------------------------------------------------------- Appendix C material (verbatim)

CAPTION_EXAMPLE = (
    "In the image, there is a person in the center of the frame who appears to be in motion, "
    "possibly walking or riding a scooter, as they are captured mid-stride. The individual is "
    "wearing a light-colored shirt and dark pants, and they are positioned on a sidewalk "
    "adjacent to a crosswalk. The person is facing away from the camera, suggesting they are "
    "moving towards the right side of the frame. On the left side of the frame, there is a car "
    "parked on the side of the road, and a person is standing near it, possibly waiting or "
    "observing the movement of the individual in the center. The car is parked on the side of "
    "the road, and the person is standing close to it, possibly indicating they are waiting for "
    "the individual to pass. On the right side of the frame, there is a car parked on the side "
    "of the road, and a person is standing."
)

RULES_EXAMPLE_NORMAL = (
    "Individuals must move in a predictable and safe manner.",
    "Bicycles and skateboards must be ridden in designated areas only.",
    "Vehicles must not be left in a manner that obstructs paths.",
    "Pedestrians must cross at designated times and places, following traffic signals.",
    "Cyclists and motorists must follow all traffic laws.",
)
RULES_EXAMPLE_ANOMALY = (
    "Individuals must not engage in public disturbances.",
    "Using an object as a weapon or for theft is prohibited.",
    "Skateboarders colliding with each other or objects is not acceptable.",
    "Leaving vehicles unattended in a way that obstructs traffic or pedestrian flow is forbidden.",
    "Engaging in behavior that disturbs the peace or endangers others is not allowed.",
)

# P̂_D, the paper's completed decision prompt
COMPLETED_DECISION_PROMPT = (
    "You are an expert in anomaly detection in video frames. You should be very strict and "
    "don’t let any anomalies or broken rules unattended. Use scene description and rules "
    "provided. Below is a scene description and the video’s rules:\n"
    "\n"
    "Scene Description:\n"
    f"{CAPTION_EXAMPLE}\n"
    "\n"
    "Rules for Normal/Anomaly Scenes:\n"
    "=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===\n"
    + "".join(f"- {r}\n" for r in RULES_EXAMPLE_NORMAL)
    + "\n=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ===\n"
    + "".join(f"- {r}\n" for r in RULES_EXAMPLE_ANOMALY)
    + "\n"
    "Analyze this scene and determine:\n"
    "1. Is this an anomaly scene? (Answer Yes/No first)\n"
    "2. If anomaly, which rules are broken?\n"
    "\n"
    "Format your response like this:\n"
    "Anomaly: Yes/No\n"
    'Broken Rules: [list broken rules or "None"]'
)

# R_A, the paper's rule-set output (markdown ### headers instead of ===)
RULE_SET_OUTPUT = """### RULES FOR NORMAL ACTIVITIES OR OBJECTS
- Vehicles and pedestrians must adhere to traffic signals and pedestrian crossings.
- Skateboarders and bikers are allowed in designated areas with proper safety gear.
- Golf carts are permitted in golf courses and must be used according to the course rules.
- Trolleys are to be used within store premises by authorized personnel.

### RULES FOR ANOMALY ACTIVITIES OR OBJECTS
- Vehicles must not exceed speed limits or drive recklessly.
- Pedestrians should not jaywalk or obstruct traffic flow.
- Skateboarders and bikers must avoid colliding with others or stationary objects.
- Climbing poles without authorization is prohibited for safety reasons.
"""

# O_t, the paper's decision output
DECISION_OUTPUT = """
Anomaly: Yes

Broken Rules:
- Individuals must move in a predictable and safe manner. (The person is riding a scooter on \
a crosswalk, which may not be a designated area for scooters.)
- Vehicles must not be left in a manner that obstructs paths. (Although the car is parked on \
the side of the road, it’s not clear if it’s obstructing the path or not, but the primary \
concern is the scooter usage on the crosswalk.)
- Individuals must not engage in public disturbances. (Riding a scooter on a crosswalk could \
potentially be disturbing or hazardous to others.)
Note: The scene description does not explicitly mention the scooter being used as a weapon, \
theft, or skateboarders colliding, but riding a scooter on a crosswalk raises concerns about \
predictable and safe movement, and potentially disturbing public peace."""


# ----------------------------------------------------------------------------- prompts


def test_default_prompts_contain_appendix_c_sentences() -> None:
    assert DEFAULT_PROMPTS.caption == (
        "You are an AI visual assistant that can analyze a video frame. Describe the frame with "
        "focus on people’s activities, objects and their relation. Don’t mention background."
    )
    rules = DEFAULT_PROMPTS.rules
    assert rules.startswith(
        "You are an expert in analyzing scenes and generating rules for normal and anomaly "
        "detection. Now given the following frame description:\n{caption}\n\n"
    )
    assert "1. What constitutes a normal activity or object in this context.\n" in rules
    assert "2. What constitutes an anomaly activity or object in this context.\n" in rules
    assert "The only anomalies that matter are interactions of two or more objects/actors." in rules
    assert rules.endswith("Don’t miss any interacted objects.")
    agg = DEFAULT_PROMPTS.aggregate
    assert (
        "4. Contradictory rules resolved by considering the worst case (apply stricter rules)\n"
        in agg
    )
    assert "5. Consistent formatting, with no markdown annotations, no extra talks\n" in agg
    assert "Rules to aggregate:\n{rule_sets}\n\nProvide the consolidated rules" in agg
    assert agg.endswith(
        "=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===\n- [normal rule 1]\n- [normal rule 2]\n"
        "...\n\n=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ===\n- [anomaly rule 1]\n"
        "- [anomaly rule 2]\n..."
    )
    dec = DEFAULT_PROMPTS.decision
    assert "Below is a scene description and the video’s rules:" in dec
    assert "Below is t scene" not in dec
    assert dec.endswith('Format your response like this:\nAnomaly: Yes/No\n'
                        'Broken Rules: [list broken rules or "None"]')


def test_decision_prompt_reproduces_the_papers_completed_example() -> None:
    rules = RuleSet(RULES_EXAMPLE_NORMAL, RULES_EXAMPLE_ANOMALY).render()
    assert format_decision_prompt(CAPTION_EXAMPLE, rules) == COMPLETED_DECISION_PROMPT


def test_rule_and_aggregate_prompts_fill_slots() -> None:
    p = format_rule_prompt("  A man rides a {rules} bike.  ")
    assert "frame description:\nA man rides a {rules} bike.\n\nGenerate a set of rules" in p
    assert "{caption}" not in p
    agg = format_aggregate_prompt(["1. normal: walk\n2. anomaly: fight\n", "normal: sit"])
    assert "Rules to aggregate:\nRule set 1:\n1. normal: walk\n2. anomaly: fight\n\n" \
           "Rule set 2:\nnormal: sit\n\nProvide the consolidated" in agg


def test_load_prompts_overrides_and_validation(tmp_path: Path) -> None:
    assert load_prompts(None) == DEFAULT_PROMPTS
    (tmp_path / "rules.txt").write_text("Rules for: {caption} {json: 1}\n", encoding="utf-8")
    (tmp_path / "caption.txt").write_text("Describe it.\n\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    prompts = load_prompts(tmp_path)
    assert prompts.caption == "Describe it."
    assert prompts.rules == "Rules for: {caption} {json: 1}"
    assert prompts.aggregate == DEFAULT_PROMPTS.aggregate
    assert prompts.decision == DEFAULT_PROMPTS.decision
    assert format_rule_prompt("x", prompts) == "Rules for: x {json: 1}"

    (tmp_path / "decision.txt").write_text("Scene: {caption}\nno rules slot", encoding="utf-8")
    with pytest.raises(ValueError, match=r"decision\.txt.*\{rules\}"):
        load_prompts(tmp_path)
    (tmp_path / "decision.txt").unlink()
    (tmp_path / "aggregate.txt").write_text("Combine: {rules}", encoding="utf-8")
    with pytest.raises(ValueError, match=r"aggregate\.txt"):
        load_prompts(tmp_path)
    (tmp_path / "aggregate.txt").write_text("Combine: {rule_sets}", encoding="utf-8")
    assert format_aggregate_prompt(["a"], load_prompts(tmp_path)) == "Combine: Rule set 1:\na"
    with pytest.raises(FileNotFoundError):
        load_prompts(tmp_path / "missing")

    single = tmp_path / "my_decision.txt"
    single.write_text("D {caption} | {rules}\n", encoding="utf-8")
    prompts = load_prompts(None, decision_file=single)
    assert format_decision_prompt("c", "r", prompts) == "D c | r"


# ------------------------------------------------------------------------- rule parsing


def test_parse_rules_paper_rule_set_output_with_markdown_headers() -> None:
    rs = parse_rules(RULE_SET_OUTPUT)
    assert rs.normal == (
        "Vehicles and pedestrians must adhere to traffic signals and pedestrian crossings.",
        "Skateboarders and bikers are allowed in designated areas with proper safety gear.",
        "Golf carts are permitted in golf courses and must be used according to the course rules.",
        "Trolleys are to be used within store premises by authorized personnel.",
    )
    assert rs.anomaly == (
        "Vehicles must not exceed speed limits or drive recklessly.",
        "Pedestrians should not jaywalk or obstruct traffic flow.",
        "Skateboarders and bikers must avoid colliding with others or stationary objects.",
        "Climbing poles without authorization is prohibited for safety reasons.",
    )


def test_render_then_parse_round_trip_and_exact_format() -> None:
    rs = RuleSet(("Walk on sidewalks.",), ("Fighting.", "Car on sidewalk."))
    assert rs.render() == (
        "=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===\n- Walk on sidewalks.\n\n"
        "=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ===\n- Fighting.\n- Car on sidewalk."
    )
    assert parse_rules(rs.render()) == rs
    assert RuleSet().render() == (
        "=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===\n\n"
        "=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ==="
    )
    assert RuleSet().empty and not rs.empty


def test_parse_rules_strict_format_with_chatter_and_template_echo() -> None:
    text = (
        "Sure! Here are the consolidated rules:\n\n"
        "=== RULES FOR NORMAL ACTIVITIES OR OBJECTS ===\n"
        "- Pedestrians walk on the sidewalk.\n"
        "- **Cars** stop at the crosswalk.\n"
        "...\n\n"
        "=== RULES FOR ANOMALY ACTIVITIES OR OBJECTS ===\n"
        "- [anomaly rule 1]\n"
        "- A person leaves a package unattended.\n"
        "...\n\n"
        "Let me know if you need anything else."
    )
    rs = parse_rules(text)
    assert rs.normal == ("Pedestrians walk on the sidewalk.", "Cars stop at the crosswalk.")
    assert rs.anomaly == ("A person leaves a package unattended.",)


def test_parse_rules_free_form_numbered_sections_with_sub_bullets() -> None:
    text = """Based on the frame description, here are the rules for normal and anomaly detection:

**1. Normal Activities or Objects:**

* Pedestrians walking on the sidewalk or crossing at the crosswalk.
* **Vehicles:**
\t+ Cars parked on the side of the road.
\t+ Cars driving slowly on the street.
* A person standing near a parked car, waiting.

**2. Anomaly Activities or Objects:**

1. **Scooter on crosswalk**: A person riding a scooter across the crosswalk
   while pedestrians are crossing.
2. Two or more people engaging in a physical altercation.

**Note:** These rules are specific to the campus street scene.
- Be strict about interactions.

I hope these rules help!"""
    rs = parse_rules(text)
    assert rs.normal == (
        "Pedestrians walking on the sidewalk or crossing at the crosswalk.",
        "Vehicles: Cars parked on the side of the road.",
        "Vehicles: Cars driving slowly on the street.",
        "A person standing near a parked car, waiting.",
    )
    assert rs.anomaly == (
        "Scooter on crosswalk: A person riding a scooter across the crosswalk while "
        "pedestrians are crossing.",
        "Two or more people engaging in a physical altercation.",
    )


def test_parse_rules_echoed_questions_as_headers() -> None:
    text = """Here are the rules:

1. What constitutes a normal activity or object in this context:
   - People walking on the sidewalk.
   - Cars parked along the road.
2. What constitutes an anomaly activity or object in this context:
   - A person riding a scooter into a pedestrian.

These rules will help identify anomalies."""
    rs = parse_rules(text)
    assert rs.normal == ("People walking on the sidewalk.", "Cars parked along the road.")
    assert rs.anomaly == ("A person riding a scooter into a pedestrian.",)


@pytest.mark.parametrize(
    ("text", "normal", "anomaly"),
    [
        # bare header phrases, no markup
        ("Normal Activities/Objects\n- walk\n\nAnomalies\n- fight\n", ("walk",), ("fight",)),
        # inline "Header: rule"
        ("Normal: People walking.\nAnomaly: People fighting.", ("People walking.",),
         ("People fighting.",)),
        # ## headers, numbered items, "abnormal" counts as anomaly
        ("## Normal rules\n1. a\n2) b\n\n## Abnormal behaviour\n1. c", ("a", "b"), ("c",)),
        # plain-sentence rules in a section without list items
        ("Normal:\nPeople walk.\nCars park.\n\nAnomaly:\nA fight breaks out.",
         ("People walk.", "Cars park."), ("A fight breaks out.",)),
        # no header at all: keyword fallback
        ("1. Normal activities include walking.\n2. Anomalies include fights.",
         ("Normal activities include walking.",), ("Anomalies include fights.",)),
        # a chatter heading closes the section
        ("### Normal\n- a\n### Anomaly\n- b\n### Explanation\n- not a rule", ("a",), ("b",)),
        ("", (), ()),
    ],
)
def test_parse_rules_variants(text: str, normal: tuple[str, ...], anomaly: tuple[str, ...]) -> None:
    assert parse_rules(text) == RuleSet(normal, anomaly)


def test_merge_rule_sets_worst_case_and_dedup() -> None:
    a = RuleSet(
        normal=("Pedestrians walk on the sidewalk.", "Cyclists ride on the road."),
        anomaly=("Two people fighting.",),
    )
    b = RuleSet(
        normal=("pedestrians walk on the sidewalk", "Cars park at the curb."),
        anomaly=("two people  FIGHTING!", "Cyclists ride on the road"),
    )
    merged = merge_rule_sets([a, b])
    # "Cyclists ride on the road" is normal in a, anomaly in b -> anomaly only (stricter wins)
    assert merged.anomaly == ("Two people fighting.", "Cyclists ride on the road")
    assert merged.normal == ("Pedestrians walk on the sidewalk.", "Cars park at the curb.")
    assert merge_rule_sets([]) == RuleSet()


# ---------------------------------------------------------------------- decision parsing


def test_parse_decision_paper_output() -> None:
    d = parse_decision(DECISION_OUTPUT)
    assert d.anomaly is True
    assert d.raw == DECISION_OUTPUT
    assert len(d.broken_rules) == 3
    assert d.broken_rules[0].startswith("Individuals must move in a predictable and safe manner.")
    assert d.broken_rules[2] == (
        "Individuals must not engage in public disturbances. (Riding a scooter on a crosswalk "
        "could potentially be disturbing or hazardous to others.)"
    )
    assert not any(r.startswith("Note") for r in d.broken_rules)


@pytest.mark.parametrize(
    ("text", "anomaly", "broken"),
    [
        ("Anomaly: No\nBroken Rules: None", False, ()),
        ("**Anomaly:** Yes\n**Broken Rules:** [Cars must not drive on the sidewalk.]", True,
         ("Cars must not drive on the sidewalk.",)),
        ("Anomaly - yes\nBroken Rules: [\"Rule A, with comma\", \"Rule B\"]", True,
         ("Rule A, with comma", "Rule B")),
        ("ANOMALY: NO\nBROKEN RULES: \"None\"", False, ()),
        ("anomaly: [no]\nbroken rules: [None]", False, ()),
        ("Yes\n\nThe scooter hits a pedestrian.", True, ()),
        ("No.\nEverything looks normal.", False, ()),
        ("### Anomaly:\nYes\n\n### Broken Rules:\n1. **Rule X**\n\n2. Rule Y\n\nExplanation.",
         True, ("Rule X", "Rule Y")),
        ("1. Is this an anomaly scene? No\n2. None", False, ()),
        ("Anomaly: Yes/No\nAnomaly: Yes\nBroken Rules: a; b", True, ("a", "b")),
        ("I cannot tell from the description.", None, ()),
        ("Anomaly: Possibly\nBroken Rules: None", None, ()),
        ("Anomaly: None", None, ()),
        ("", None, ()),
    ],
)
def test_parse_decision_variants(text: str, anomaly: bool | None, broken: tuple[str, ...]) -> None:
    assert parse_decision(text) == Decision(anomaly, broken, text)


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
