"""prefopt/experiments/diagnose.py: the rates by operation on worked answers."""

from prefopt.experiments import diagnose


def test_operation_rates_on_worked_answers():
    """Two additions and a subtraction, 2 candidates each:

    - 1 + 13 = 14: "Answer: 14" right, "Answer: 15" a miss by 1 (near)
    - 2 + 20 = 22: "Answer: 22" right twice
    - 9 - 3 = 6: "Answer: 16" a miss by 10 (not near), "no idea" no number (no miss counted)

    + : right 3 of 4 candidates averaged per problem = (1/2 + 2/2) / 2 = 0.75; any right 2/2; near 1 of 1 miss.
    − : right 0; any right 0; near 0 of 1 miss.
    """
    rows = [{"prompt": "Q: 1 + 13 = ?\n", "candidates": ["1 + 10 = 11. Answer: 14", "Answer: 15"]},
            {"prompt": "Q: 2 + 20 = ?\n", "candidates": ["Answer: 22", "2 + 20 = 22. Answer: 22"]},
            {"prompt": "Q: 9 - 3 = ?\n", "candidates": ["Answer: 16", "no idea"]}]
    assert diagnose.operation_rates(rows) == {
        "+": {"problems": 2, "right": 0.75, "any_right": 1.0, "near_misses": 1.0},
        "-": {"problems": 1, "right": 0.0, "any_right": 0.0, "near_misses": 0.0}}


def test_one_greedy_answer_makes_right_and_any_right_the_same():
    rows = [{"prompt": f"Q: {a} * 3 = ?\n", "candidates": [f"Answer: {3 * a + (a % 2)}"]} for a in range(10, 14)]
    (rates,) = diagnose.operation_rates(rows).values()
    assert rates["right"] == rates["any_right"] == 0.5 and rates["near_misses"] == 1.0
