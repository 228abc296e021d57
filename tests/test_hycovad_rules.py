"""HyCoVAD's prompts (Appendix C, verbatim) and the parsers of the LLM's rule sets and decisions,
on realistic outputs including the paper's own examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from methods.hycovad.prompts import (
    DEFAULT_PROMPTS,
    format_aggregate_prompt,
    format_decision_prompt,
    format_rule_prompt,
    load_prompts,
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
