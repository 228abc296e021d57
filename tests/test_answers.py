from __future__ import annotations

import math

from tasks.answers import extract_yes_no, yes_probability


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
