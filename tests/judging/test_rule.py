"""The rule judge on tricky answers."""

import pytest

from prefopt.judging.rule import equal, extract_answer, score


@pytest.mark.parametrize("response, reference, expected", [
    ("2 + 2 = 4. Answer: 4", "4", 5),
    ("Answer: 4", "4", 4),  # right, but no working shown
    ("So x = 1/2. Answer: 0.5", "1/2", 5),  # 0.5 == 1/2
    ("We get \\boxed{12} apples in total, as 10 + 2 = 12.", "12", 5),
    ("The answer is \\boxed{\\frac{1}{2}}", "0.5", 4),
    ("Answer: 12. That's all, 10 + 2 = 12!", "12", 5),  # trailing text
    ("Answer: 1,234", "1234", 4),  # thousands separator
    ("3 * 4 = 12. Answer: -12", "12", 2),  # wrong sign
    ("3 * 4 = 13. Answer: 13", "12", 2),
    ("I am not sure how to do this.", "12", 1),  # no answer at all
    ("", "12", 1),
    ("Answer: 3.0", "3", 4),
])
def test_tricky_answers(response, reference, expected):
    assert score(response, reference) == expected


def test_extraction_and_equality():
    assert extract_answer("first \\boxed{1} then \\boxed{x^{2}}") == "x^{2}"
    assert extract_answer("10 then 20 then 30") == "30"
    assert extract_answer("nothing") is None
    assert equal("\\frac{3}{6}", "0.5") and equal("$7$", "7") and not equal("7", "8")
    assert equal("x^2", "x^2") and not equal("x^2", "x^3")


def test_the_plain_number_fast_path_agrees_with_sympy():
    """Integers, decimals and a/b compare as exact fractions without sympy; sympy gives the same verdict."""
    from prefopt.judging.rule import _plain, _value

    values = ["3", "3.0", "-3", "0.5", "1/2", "2/4", "10", "-0.25", "-1/4", "007", "12.50", "25/2"]
    for a in values:
        for b in values:
            assert (_plain(a) == _plain(b)) == bool(_value(a) == _value(b)), (a, b)
    assert _plain("1/0") is None and _plain("x") is None and _plain("(1)/(2)") is None


def test_closeness_ranks_wrong_numbers_and_leaves_right_and_missing_ones_at_zero():
    """1 / (1 + |answer - reference|): off by 1 is 1/2, off by 4 is 1/5, a right answer, no answer or a non-number 0."""
    from prefopt.judging.rule import closeness

    assert closeness("12 - 20 = -8. Answer: -13", "-14") == 0.5
    assert closeness("Answer: 30", "34") == 0.2 and closeness("Answer: 1/2", "1") == 1 / 1.5
    assert closeness("Answer: 34", "34") == 0.0 and closeness("Answer: 34.0", "34") == 0.0
    assert closeness("no number here", "34") == 0.0 and closeness("\\boxed{x}", "34") == 0.0
