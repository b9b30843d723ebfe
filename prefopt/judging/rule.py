"""The rule judge for math: extract the final answer, compare it with the reference, map onto the 1-5 rubric.

Answers are taken from the last `\\boxed{...}`, else an `Answer:`/`answer is` line, else the last number.
Equality is numeric where both sides parse (sympy: `1/2 == 0.5`, `3.0 == 3`), else textual after normalisation.
Scores: 5 correct with working shown; 4 correct, answer only; 2 wrong answer; 1 no final answer (paper's rubric).
"""

from __future__ import annotations

import re

_NUM = r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?"


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth < 0:
            return text[i:j]
    return None


def extract_answer(text: str) -> str | None:
    """The response's final answer as a string, or None when it gives none."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    m = re.findall(r"(?:answer\s*(?:is|:)|=\s*\?\s*)\s*\$?\s*(" + _NUM + r")", text, flags=re.I)
    if m:
        return m[-1]
    nums = re.findall(_NUM, text)
    return nums[-1] if nums else None


def normalize(ans: str) -> str:
    """Strip TeX wrappers, dollar signs, thousands separators and trailing punctuation."""
    s = ans.strip().strip("$").strip()
    s = re.sub(r"\\(?:text|mathrm)\{([^}]*)\}", r"\1", s)
    s = re.sub(r"\\[dt]?frac\{([^}]*)\}\{([^}]*)\}", r"(\1)/(\2)", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace(",", "")
    return s.rstrip(".").strip()


def _value(s: str):
    from sympy import Rational, nsimplify
    from sympy.parsing.sympy_parser import parse_expr

    try:
        if re.fullmatch(r"-?[\d.]+(?:/[\d.]+)?|\(-?[\d.]+\)/\(-?[\d.]+\)", s):
            return nsimplify(parse_expr(s, evaluate=True), rational=True)
        return Rational(s)
    except Exception:  # not a number: compare as text
        return None


def _plain(s: str):
    """An integer, decimal or a/b written plainly, as an exact Fraction (the common case, without sympy's cost);
    None otherwise."""
    from fractions import Fraction

    if not re.fullmatch(r"-?\d+(?:\.\d+)?(?:/\d+)?", s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def equal(a: str, b: str) -> bool:
    """Whether two final answers agree: numerically when both parse, else as normalised text."""
    na, nb = normalize(a), normalize(b)
    fa, fb = _plain(na), _plain(nb)
    if fa is not None and fb is not None:  # same verdict as the sympy path below, some 50 times faster
        return fa == fb
    va, vb = _value(na), _value(nb)
    if va is not None and vb is not None:
        return bool(va == vb)
    return na.replace(" ", "").lower() == nb.replace(" ", "").lower()


def score(response: str, reference: str) -> int:
    """1-5 rubric score of a response against the reference answer."""
    ans = extract_answer(response)
    if ans is None:
        return 1
    if not equal(ans, str(reference)):
        return 2
    shows_work = len(re.findall(r"[=+\-*/]", response)) >= 2 or len(response.split()) > 8
    return 5 if shows_work else 4


def closeness(response: str, reference: str) -> float:
    """1 / (1 + |answer - reference|) for a wrong numeric final answer, else 0: how near a miss is, for a reward that
    ranks wrong answers (`reward.partial_credit`) where the rubric scores them all 2."""
    ans = extract_answer(response)
    if ans is None:
        return 0.0
    got, want = _plain(normalize(ans)), _plain(normalize(str(reference)))
    if got is None or want is None or got == want:
        return 0.0
    return float(1 / (1 + abs(got - want)))
