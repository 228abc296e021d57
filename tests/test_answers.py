"""Hand-written cases for the answer extractors: each case states its expected value."""

from __future__ import annotations

import math

import pytest

from tasks.answers import (
    VadR1Answer,
    extract_choice,
    extract_judge_scores,
    extract_score,
    extract_yes_no,
    format_ok,
    parse_options,
    parse_vad_r1,
    parse_when,
    split_question_options,
    strip_tags,
    vad_r1_official_class,
    vad_r1_official_when,
    yes_probability,
)


def test_extract_yes_no() -> None:
    assert extract_yes_no("Yes.") is True
    assert extract_yes_no("  no, nothing happens") is False
    assert extract_yes_no("Answer: YES") is True
    assert extract_yes_no("The scene looks normal") is False
    assert extract_yes_no("???") is None


def test_yes_probability_pools_variants() -> None:
    lp = {"Yes": math.log(0.3), " yes": math.log(0.1), "No": math.log(0.2), "maybe": -0.1}
    assert math.isclose(yes_probability(lp) or 0.0, 0.4 / 0.6)
    assert yes_probability({"maybe": -0.1}) is None


# ---------------------------------------------------------------- multiple choice

CHOICE_CASES = [
    # bare and bracketed letters
    ("B", "B"),
    ("b", "B"),
    ("B.", "B"),
    ("(B)", "B"),
    ("B)", "B"),
    ("[B]", "B"),
    ('"B"', "B"),
    ("  c\n", "C"),
    ("a", "A"),
    # explicit statements
    ("The correct answer is (B)", "B"),
    ("The answer is B.", "B"),
    ("Answer: B", "B"),
    ("answer: (c)", "C"),
    ("Answer:\nD", "D"),
    ("The final answer: **(d)**", "D"),
    ("The correct option is C: suburban", "C"),
    ("The most likely choice is: A", "A"),
    ("The correct answer is option B.", "B"),
    ("Answer: A because the sky is overcast", "A"),
    (
        "The video shows a pedestrian stepping onto the road while a car approaches. "
        "A cyclist is also visible on the right. The road looks wet.\nAnswer: C",
        "C",
    ),
    ("If the answer were A, the sky would be dark. It is bright, so the answer is C.", "C"),
    # leading letter with text
    ("B. A pedestrian was hit", "B"),
    ("C: sunny day", "C"),
    ("D. urban", "D"),
    ("(A) cloudy day", "A"),
    # assertions and mentions
    ("Option C", "C"),
    ("**C**", "C"),
    ("I think it's D, because the road is wet.", "D"),
    ("I'd go with B.", "B"),
    ("It is most likely C.", "C"),
    ("I think it's A.", "A"),
    ("Looking at the lighting, option B fits best.", "B"),
    # tags
    ("<answer>B</answer>", "B"),
    ("<think>At first the answer is A, maybe.</think>\n<answer>C</answer>", "C"),
    ("<think>It looks like rain.</think><answer>The answer is (d)", "D"),
    ("Therefore \\boxed{D}", "D"),
    # traps: no choice
    ("Based on the video, the weather is sunny.", None),
    ("A pedestrian crosses the road in front of the car.", None),
    ("I cannot determine the answer from the video.", None),
    ("Dark clouds cover the sky.", None),
    ("The answer is a pedestrian being hit.", None),
    ("It's A pedestrian crossing.", None),
    ("The collision happens at 9 A.M. near the school.", None),
    ("", None),
    ("   ", None),
    # ambiguous
    ("A or B", None),
    ("Answer: A or B", None),
    ("B, C", None),
    ("A/B", None),
    ("Option A is wrong; option C is right.", None),
    ("A. cloudy day, B. sunny day, C. stormy night, D. rainy afternoon", None),
    ("A) cloudy day B) sunny day C) stormy night", None),
]


@pytest.mark.parametrize(("text", "expected"), CHOICE_CASES)
def test_extract_choice(text: str, expected: str | None) -> None:
    assert extract_choice(text) == expected


WEATHER = ["cloudy day", "sunny day", "stormy night", "rainy afternoon"]
LOCATION = ["urban", "coastal", "suburban", "rural"]


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("sunny day", WEATHER, "B"),
        ("Sunny Day.", WEATHER, "B"),
        ("It was a sunny day with clear skies.", WEATHER, "B"),
        ("A sunny day", WEATHER, "B"),  # article "A", then the option text
        ("day", WEATHER, None),  # part of two options, equals none
        ("sunny day or stormy night", WEATHER, None),
        ("The video shows a street", WEATHER, None),
        ("urban", LOCATION, "A"),
        ("a suburban street", LOCATION, "C"),  # "urban" only inside "suburban"
        ("B", WEATHER, "B"),  # a letter beats option text
        ("Answer: D, though it looks like a sunny day", WEATHER, "D"),
    ],
)
def test_extract_choice_option_text(text: str, options: list[str], expected: str | None) -> None:
    assert extract_choice(text, options=options) == expected


def test_extract_choice_letters() -> None:
    assert extract_choice("I think it's E.", letters="ABCDE") == "E"
    assert extract_choice("E", letters=("A", "B", "C", "D")) is None
    assert extract_choice("I cannot say", letters="ABCDEFGHIJ") is None
    assert extract_choice("(i)", letters="ABCDEFGHIJ") == "I"
    assert extract_choice("answer: b", letters=("a", "b")) == "b"  # spelled as given
    assert extract_choice(None) is None  # type: ignore[arg-type]


def test_parse_options() -> None:
    assert parse_options("A. cloudy day, B. sunny day, C. stormy night, D. rainy afternoon") == [
        ("A", "cloudy day"),
        ("B", "sunny day"),
        ("C", "stormy night"),
        ("D", "rainy afternoon"),
    ]
    opts = parse_options(
        "A. Driver was speeding through the intersection, B. Cyclist does not notice the coming "
        "vehicles when crossing the street., C. Another vehicle ran a red light unexpectedly., "
        "D. Road was slippery, wet, and dark."
    )
    assert opts == [
        ("A", "Driver was speeding through the intersection"),
        ("B", "Cyclist does not notice the coming vehicles when crossing the street."),
        ("C", "Another vehicle ran a red light unexpectedly."),
        ("D", "Road was slippery, wet, and dark."),
    ]
    # spacing quirks of the real data: ",  B." and "C.The"
    assert parse_options("A. x, y.,  B. z, C.The w") == [("A", "x, y."), ("B", "z"), ("C", "The w")]
    # a later letter inside a text is not a boundary, only the next letter is
    assert parse_options("A. Plan C. is bad, B. ok") == [("A", "Plan C. is bad"), ("B", "ok")]
    # no comma before the marker (13 VRU strings): a marker between spaces
    assert parse_options("A. Look around. B. Signal, C. Wait") == [
        ("A", "Look around."),
        ("B", "Signal"),
        ("C", "Wait"),
    ]
    assert parse_options("cloudy, sunny") == []
    assert parse_options("") == []


def test_split_question_options() -> None:
    q = (
        "What is the anomaly in this video?\nOptions:\nA) The car disappears suddenly\n"
        "B) A person walks through a wall\nC) The shadow moves the wrong way\nD) Nothing\n"
        "Answer with the letter only."
    )
    assert split_question_options(q) == (
        "What is the anomaly in this video?",
        [
            ("A", "The car disappears suddenly"),
            ("B", "A person walks through a wall"),
            ("C", "The shadow moves the wrong way"),
            ("D", "Nothing"),
        ],
    )
    inline = "Which object changes? A) the red car B) the tree C) the sign D) the man"
    assert split_question_options(inline) == (
        "Which object changes?",
        [("A", "the red car"), ("B", "the tree"), ("C", "the sign"), ("D", "the man")],
    )
    assert split_question_options("Pick one: (A) one (B) two") == (
        "Pick one:",
        [("A", "one"), ("B", "two")],
    )
    assert split_question_options("Plan A. What then? A. stop B. go") == (
        "Plan A. What then?",
        [("A", "stop"), ("B", "go")],
    )
    assert split_question_options("Is a car visible? ") == ("Is a car visible?", [])
    assert split_question_options("A man runs. A) only one") == ("A man runs. A) only one", [])


# ---------------------------------------------------------------- Vad-R1 tags

ABNORMAL = (
    "<think>\n<step1>A crossroad at night.</step1>\n<step2>A car hits a cyclist at the lower "
    "left.</step2>\n<step3>Vehicles should yield.</step3>\n<step4>It endangers life.</step4>\n"
    "</think>\n<answer>\nThe anomaly is <which>Traffic Accident</which>. In this video, <what>a "
    "car hits a cyclist</what> during <when>[0.121, 0.826]</when> in the <where>lower-left "
    "area</where>. It is abnormal because <why>the car does not yield</why>. <how>The cyclist "
    "could be injured</how>.\n</answer>"
)
NORMAL = (
    "<think><step1>People walk in a mall.</step1> <step2>Nothing unusual.</step2></think>\n"
    "<answer>The video is classified as <which>Normal</which>. In this video, <what>people "
    "shop</what>. This is normal because <why>everyone behaves as usual</why>.</answer>"
)


def test_parse_vad_r1_complete() -> None:
    a = parse_vad_r1(ABNORMAL)
    assert a.steps == {
        1: "A crossroad at night.",
        2: "A car hits a cyclist at the lower left.",
        3: "Vehicles should yield.",
        4: "It endangers life.",
    }
    assert (a.which, a.what, a.where) == (
        "Traffic Accident",
        "a car hits a cyclist",
        "lower-left area",
    )
    assert (a.why, a.how) == ("the car does not yield", "The cyclist could be injured")
    assert a.when == (0.121, 0.826)
    assert a.when_text == "[0.121, 0.826]"
    assert a.think is not None and a.think.startswith("<step1>A crossroad")
    assert a.answer is not None and a.answer.startswith("The anomaly is <which>")
    assert a.problems == []
    assert a.is_normal is False
    n = parse_vad_r1(NORMAL)
    assert (n.which, n.what, n.why, n.when) == (
        "Normal",
        "people shop",
        "everyone behaves as usual",
        None,
    )
    assert n.steps == {1: "People walk in a mall.", 2: "Nothing unusual."}
    assert n.problems == []  # no when/where/how/step3/step4 expected for the normal form
    assert n.is_normal is True


def test_parse_vad_r1_case_and_spaces() -> None:
    a = parse_vad_r1("<THINK><Step1> x </Step1></think><Answer>< which >Normal</ WHICH ></answer>")
    assert a.which == "Normal"
    assert a.steps == {1: "x"}
    assert a.problems == ["missing <step2>", "missing <what>", "missing <why>"]


def test_parse_vad_r1_missing_and_truncated() -> None:
    assert parse_vad_r1("") == VadR1Answer(
        problems=["missing <think>", "missing <answer>", "missing <which>"]
    )
    assert parse_vad_r1(None).problems == ["not a text"]  # type: ignore[arg-type]
    # generation cut inside <think>
    a = parse_vad_r1("<think><step1>The video shows a road")
    assert a.think == "<step1>The video shows a road"
    assert a.steps == {1: "The video shows a road"}
    assert a.answer is None
    assert a.problems == [
        "unclosed <think>",
        "missing <answer>",
        "unclosed <step1>",
        "missing <which>",
    ]
    # generation cut inside <answer>, in the middle of <why>
    b = parse_vad_r1(
        "<think><step1>s1</step1><step2>s2</step2><step3>s3</step3><step4>s4</step4></think>"
        "<answer>It is <which>Robbery</which>: <what>a man grabs a bag</what> at "
        "<when>[0.4, 0.6]</when>, <where>center</where>, because <why>taking"
    )
    assert (b.which, b.what, b.when, b.where, b.why, b.how) == (
        "Robbery",
        "a man grabs a bag",
        (0.4, 0.6),
        "center",
        "taking",
        None,
    )
    assert b.problems == ["unclosed <answer>", "unclosed <why>", "missing <how>"]
    # a closing tag forgotten in the middle: content runs to the next opening tag
    c = parse_vad_r1("<think><step1>x<step2>y</step2></think><answer><which>Fighting<what>w</what>")
    assert (c.steps, c.which, c.what) == ({1: "x", 2: "y"}, "Fighting", "w")
    assert "unclosed <step1>" in c.problems and "unclosed <which>" in c.problems
    # no <answer> at all, fields found in the text
    d = parse_vad_r1("<think><step1>x</step1><step2>y</step2></think> <which>Normal</which>")
    assert d.which == "Normal"
    assert d.problems == ["missing <answer>", "missing <what>", "missing <why>"]


def test_parse_vad_r1_repeated_and_outside() -> None:
    a = parse_vad_r1(
        "<think><step1>x</step1><step2>y</step2></think><answer><which>Robbery</which> or "
        "<which>Theft</which> <what>w</what> <why>z</why></answer> <how>h</how>"
    )
    assert a.which == "Robbery"  # first occurrence wins
    assert a.how == "h"
    assert a.problems[0] == "repeated <which> (first used)"
    assert "<how> outside <answer>" in a.problems
    assert "missing <when>" in a.problems and "missing <step3>" in a.problems


@pytest.mark.parametrize(
    ("content", "expected", "problems"),
    [
        ("[0.121, 0.826]", (0.121, 0.826), []),
        ("[0.1,0.8]", (0.1, 0.8), []),
        ("(0.1, 0.8)", (0.1, 0.8), []),
        ("0.1 - 0.8", (0.1, 0.8), []),
        ("0.1-0.8", (0.1, 0.8), []),
        ("0.1 to 0.8", (0.1, 0.8), []),
        ("from 0.25 to 0.45 of the video", (0.25, 0.45), []),
        ("[0.8, 0.2]", (0.2, 0.8), ["when start > end (swapped)"]),
        ("[12, 40]", (12.0, 40.0), ["when outside [0, 1]"]),
        ("[0.5, 1.2]", (0.5, 1.2), ["when outside [0, 1]"]),
        ("the middle part", None, ["when not parseable"]),
        ("[0.5]", None, ["when not parseable"]),
    ],
)
def test_parse_when(
    content: str, expected: tuple[float, float] | None, problems: list[str]
) -> None:
    assert parse_when(content) == (expected, problems)
    parsed = parse_vad_r1(f"<answer><which>X</which><when>{content}</when></answer>")
    assert parsed.when == expected
    assert [p for p in parsed.problems if p.startswith("when")] == problems


def test_vad_r1_official_rules() -> None:
    assert vad_r1_official_class(NORMAL) == "Normal"
    assert vad_r1_official_class(ABNORMAL) == "Abnormal"
    assert vad_r1_official_class("no tags at all") == "Abnormal"
    assert vad_r1_official_class("<which> Normal</which>") == "Abnormal"  # exact, no strip
    assert vad_r1_official_class("<Which>Normal</Which>") == "Abnormal"  # tags case-sensitive
    assert vad_r1_official_class("<which>Normal</which><which>Fighting</which>") == "Normal"
    assert vad_r1_official_class("<which>Fighting</which><which>Normal</which>") == "Abnormal"
    assert vad_r1_official_class("<which>Nor\nmal</which>") == "Abnormal"
    assert vad_r1_official_when(ABNORMAL) == (0.121, 0.826)
    assert vad_r1_official_when("<when>[0.2,0.3]</when><when>[0.5, 0.6]</when>") == (0.2, 0.3)
    assert vad_r1_official_when("<when>(0.2, 0.3)</when>") == (0.0, 0.0)  # only [a, b]
    assert vad_r1_official_when("<when>[0.2, 0.3] </when>") == (0.0, 0.0)
    assert vad_r1_official_when("<when>[0.1.2, 0.3]</when>") == (0.0, 0.0)  # no crash
    assert vad_r1_official_when("") == (0.0, 0.0)


def test_strip_tags() -> None:
    assert strip_tags("<answer>\nThe video is <which>Normal</which>.\n</answer>") == (
        "The video is Normal."
    )
    assert strip_tags("a < b and c > d") == "a  d"  # the official regex removes "< b and c >"
    assert strip_tags("line1\nline2") == "line1line2"
    assert strip_tags("") == ""


def test_format_ok() -> None:
    assert format_ok(ABNORMAL)
    assert format_ok(NORMAL)
    assert format_ok("\n  " + ABNORMAL + "\n")
    # abnormal form with a step missing, fields out of order, or text outside
    assert not format_ok(ABNORMAL.replace("<step3>Vehicles should yield.</step3>", ""))
    swapped = ABNORMAL.replace("<where>lower-left area</where>", "").replace(
        "<what>", "<where>here</where> <what>"
    )
    assert not format_ok(swapped)
    assert not format_ok("Sure! " + ABNORMAL)
    assert not format_ok(ABNORMAL + " Hope this helps.")
    # the normal form needs which == "Normal" and exactly two steps
    assert not format_ok(NORMAL.replace("<which>Normal</which>", "<which>Fighting</which>"))
    assert not format_ok(NORMAL.replace("</step2>", "</step2><step3>z</step3>"))
    # a repeated or unclosed tag breaks the format
    assert not format_ok(NORMAL.replace("<why>", "<which>Normal</which> <why>"))
    assert not format_ok(NORMAL.replace("</what>", ""))
    assert not format_ok(NORMAL.replace("<think>", "<THINK>").replace("</think>", "</THINK>"))
    assert not format_ok("")
    assert not format_ok(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[0.8]", 0.8),
        ("Score: [0.75]", 0.75),
        ("[ 0.3 ]", 0.3),
        ("0.9", 0.9),
        ("  0.9.  ", 0.9),
        ("score of 0.6", 0.6),
        ("The anomaly score is 0.35 given the calm scene.", 0.35),
        ("8/10", 0.8),
        ("Rating: 3/5", 0.6),
        ("80%", 0.8),
        ("I am 65% sure it is abnormal", 0.65),
        ("[80%]", 0.8),
        ("On the scale [0, 1] I rate it [0.7]", 0.7),  # a two-number bracket is a range
        ("First guess [0.2]. On reflection: [0.6]", 0.6),  # the last bracket wins
        ("Scale 0 to 1 ... reasoning ...\n</think>\n\n[0.2]", 0.2),
        ("The person walks calmly.\n\n0.1", 0.1),  # last line alone
        ("[1.5]", None),  # out of range, no fall-back
        ("score: 7", None),
        ("[0.1, 0.2]", None),
        ("on 9/3/2015 nothing happens", None),  # a date is not a fraction
        ("The scene is normal.", None),
        ("", None),
    ],
)
def test_extract_score(text: str, expected: float | None) -> None:
    got = extract_score(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_extract_score_range() -> None:
    assert extract_score("[7]", lo=0, hi=10) == 7.0
    assert extract_score("8/10", lo=0, hi=10) == pytest.approx(8.0)
    assert extract_score("50%", lo=-1, hi=1) == pytest.approx(0.0)
    assert extract_score("[0]", lo=1, hi=5) is None
    assert extract_score(None) is None  # type: ignore[arg-type]


KEYS3 = {"reasonability": 0.8, "detail": 0.6, "consistency": 1.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"reasonability": 0.8, "detail": 0.6, "consistency": 1.0}', KEYS3),
        (
            'Here is my evaluation:\n```json\n{\n  "reasonability": 0.8,\n  "detail": 0.6,\n'
            '  "consistency": 1,\n}\n```\nThe answer is mostly right.',
            KEYS3,
        ),
        ("{'reasonability': 0.8, 'detail': 0.6, 'consistency': 1.0}", KEYS3),
        ('Scores: {"Reasonability": "0.8", "Detail": 0.6, "Consistency": 1.0} (done)', KEYS3),
        ('{"scores": {"reasonability": 0.8, "detail": 0.6, "consistency": 1.0}}', KEYS3),
        (
            '{"reasonability": {"score": 0.8, "reason": "fine"}, "detail": {"score": 0.6}, '
            '"consistency": {"score": 1.0}}',
            KEYS3,
        ),
        (
            "Template: {reasonability: <score>}\n"
            '{"reasonability": 0.8, "detail": 0.6, "consistency": 1.0}',
            KEYS3,
        ),
        ("Reasonability: 0.8\nDetail: 0.6\nConsistency: 1.0", KEYS3),
        ("- **Reasonability** = 0.8\n- **Detail**: 0.6\n- Consistency score: 1", KEYS3),
        ('{"reasonability": 0.8, "detail": 0.6}', None),  # key missing
        ("reasonability: 0.8\ndetail: 0.6", None),
        ('{"reasonability": 8, "detail": 6, "consistency": 10}', None),  # not in [0, 1]
        ('{"reasonability": "high", "detail": 0.6, "consistency": 1.0}', None),
        ("The description is reasonable and detailed.", None),
        ("", None),
    ],
)
def test_extract_judge_scores(text: str, expected: dict[str, float] | None) -> None:
    assert extract_judge_scores(text) == expected


def test_extract_judge_scores_keys() -> None:
    assert extract_judge_scores('{"Factual Accuracy": 0.5}', keys=("factual_accuracy",)) == {
        "factual_accuracy": 0.5
    }
    assert extract_judge_scores("fluency: 0.9", keys=("fluency",)) == {"fluency": 0.9}
    assert extract_judge_scores(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("module", ["choice", "vad_r1", "scores", "yes_no"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"tasks.answers.{module}"))
    assert result.failed == 0
