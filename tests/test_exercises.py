"""The exercise checks: a right answer passes, a blank one falls back, a wrong one says how."""

from pathlib import Path

import numpy as np
import pytest
import torch

from coursekit.exercises import check_function, compare_values, is_blank


def reference(x, scale):
    return torch.clamp(x * scale, 0, 1)


CASES = [(torch.linspace(0, 1, 12).reshape(3, 4), 0.5), (torch.ones(2, 2), 2.0)]


def test_a_correct_function_passes_and_is_returned(capsys):
    def mine(x, scale):
        return (x * scale).clamp(0, 1)

    assert check_function(mine, reference, CASES) is mine
    assert capsys.readouterr().out.startswith("Correct: `mine` matches the reference on 2 cases.")


def test_a_blank_exercise_falls_back_and_says_so(capsys):
    def mine(x, scale): ...

    assert check_function(mine, reference, CASES) is reference
    out = capsys.readouterr().out
    assert out.startswith("Not done yet") and "reference version" in out


def test_not_implemented_counts_as_blank(capsys):
    def mine(x, scale):
        raise NotImplementedError

    assert check_function(mine, reference, CASES) is reference
    assert capsys.readouterr().out.startswith("Not done yet")


def test_a_wrong_value_names_the_case_and_the_difference(capsys):
    def mine(x, scale):
        return x * scale  # forgot the clamp: case 2 differs

    assert check_function(mine, reference, CASES) is reference
    out = " ".join(capsys.readouterr().out.split())
    assert "Not yet right: case 2 of 2" in out and "4 of 4 values differ" in out
    assert "largest difference is 1" in out


def test_a_wrong_shape_and_an_exception_are_reported(capsys):
    def flat(x, scale):
        return reference(x, scale).flatten()

    def broken(x, scale):
        return x @ x  # 3x4 @ 3x4 fails

    assert check_function(flat, reference, CASES) is reference
    assert "expected shape (3, 4), got shape (12,)" in " ".join(capsys.readouterr().out.split())
    assert check_function(broken, reference, CASES) is reference
    assert "raised RuntimeError" in capsys.readouterr().out


def test_printed_lines_fit_the_page(capsys):
    def mine(x, scale):
        return x * scale * 1000

    check_function(mine, reference, CASES)
    assert all(len(line) <= 75 for line in capsys.readouterr().out.splitlines())


def test_compare_values_tolerances_and_structures():
    assert compare_values(1.0, 1.0 + 1e-9) is None
    assert compare_values(1.0, 1.1) is not None
    assert compare_values(torch.tensor([1.0, float("nan")]), np.array([1.0, np.nan])) is None
    assert compare_values((torch.zeros(2), "a"), (torch.zeros(2), "a")) is None
    assert "item 1" in compare_values((torch.zeros(2), "a"), (torch.zeros(2), "b"))
    assert "expected a tensor" in compare_values(torch.zeros(2), "zeros")
    assert compare_values([1, 2, 3], torch.tensor([1.0, 2.0, 3.0])) is None
    assert compare_values(1.0, 1.05, rtol=0.1) is None


def test_is_blank():
    assert is_blank(...) and is_blank(None) and not is_blank(0)


@pytest.mark.parametrize(
    "bad, match",
    [({"cases": []}, "cases"), ({"cases": "ab"}, "cases"), ({"rtol": -1}, "rtol"), ({"atol": float("nan")}, "atol")],
)
def test_bad_arguments_are_named(bad, match):
    arguments = {"cases": CASES, **bad}
    with pytest.raises(ValueError, match=match):
        check_function(reference, reference, **arguments)
    with pytest.raises(TypeError, match="student"):
        check_function(3, reference, CASES)


# --- likely mistakes, the exercise bank, and the hand-over from a folded solution ---------------

from coursekit.exercises import (  # noqa: E402
    Mistake,
    all_exercises,
    check_exercise,
    exercise,
    last_verdict,
    use_solution,
)


def forgot_clamp(x, scale):
    return x * scale


def clamped_wrong_way(x, scale):
    return torch.clamp(x * scale, -1, 1)


MISTAKES = [
    Mistake("you forgot to clip to [0, 1].", forgot_clamp),
    Mistake("you clipped to [-1, 1] instead of [0, 1].", clamped_wrong_way),
]


def test_a_known_mistake_is_named_in_words(capsys):
    def mine(x, scale):
        return x * scale  # the first mistake exactly

    assert check_function(mine, reference, CASES, mistakes=MISTAKES) is reference
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet right: it looks like you forgot to clip to [0, 1].")


def test_an_unknown_mistake_gets_the_numbers_and_the_hint(capsys):
    def mine(x, scale):
        return (x * scale + 0.5).clamp(0, 1)

    check_function(mine, reference, CASES, mistakes=MISTAKES, hint="look at the clipping.")
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "case 1 of 2" in out
        and "it looks like" not in out
        and out.endswith("Hint: look at the clipping. The cells below use the reference version for now.")
    )


def test_a_mistake_that_agrees_with_the_reference_on_these_cases_is_not_blamed(capsys):
    def mine(x, scale):
        return (x * scale + 1).clamp(0, 1)  # wrong, but neither mistake

    harmless = Mistake("you did nothing wrong here.", reference)  # equals the reference: never named
    check_function(mine, reference, CASES, mistakes=[harmless, *MISTAKES])
    assert "nothing wrong" not in capsys.readouterr().out


def test_a_mistake_that_raises_is_skipped(capsys):
    def broken(x, scale):
        raise RuntimeError("no")

    check_function(forgot_clamp, reference, CASES, mistakes=[Mistake("never.", broken), *MISTAKES])
    assert "you forgot to clip" in capsys.readouterr().out


def _bank():
    return list(all_exercises().values())


@pytest.mark.parametrize("entry", _bank(), ids=lambda e: e.id)
def test_every_exercise_reference_passes_and_every_mistake_is_recognised(entry):
    cases = entry.sample_cases()
    assert entry.verdict(entry.reference, cases).passed
    assert len(entry.mistakes) >= 2
    for mistake in entry.mistakes:
        verdict = entry.verdict(mistake.function, cases)
        assert verdict.status == "wrong" and verdict.mistake == mistake.explanation, (mistake.explanation, verdict)

    def blank(*args): ...

    assert entry.verdict(blank, cases).status == "blank"


def test_every_exercise_is_checked_in_its_chapter_and_every_check_names_one():
    import re

    from tools.notebooks import chapter_paths

    root = Path(__file__).resolve().parents[1]
    checked = {}
    for path in chapter_paths(root):
        for name in re.findall(r"check_exercise\(\s*\"(\w+)\"", path.read_text()):
            checked.setdefault(name, []).append(path.stem)
    bank = all_exercises()
    for name, chapters in checked.items():
        assert name in bank, f"{chapters} check an exercise {name!r} the bank does not know"
        assert chapters == [bank[name].chapter], (name, chapters, bank[name].chapter)
    assert set(bank) <= set(checked), f"exercises no chapter checks: {set(bank) - set(checked)}"


def test_use_solution_keeps_a_passing_attempt_and_says_which_is_used(capsys):
    entry = exercise("paper_decay")
    cases = entry.sample_cases()

    def mine(model):
        return entry.reference(model)

    def blank(model): ...

    def solution(model):
        return entry.reference(model)

    assert check_exercise("paper_decay", mine, cases) is mine
    assert last_verdict("paper_decay").passed
    assert use_solution("paper_decay", solution, mine) is mine
    assert "keeps using yours" in " ".join(capsys.readouterr().out.split())
    assert check_exercise("paper_decay", blank, cases) is entry.reference
    assert use_solution("paper_decay", solution, entry.reference) is solution
    assert "uses this solution (your `paper_decay` is not done yet)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(AssertionError, match="fails its own check"):
        use_solution("paper_decay", lambda model: 0 * entry.reference(model), entry.reference)


def test_an_unknown_exercise_is_named():
    with pytest.raises(ValueError, match="unknown exercise 'nope'"):
        check_exercise("nope", reference, CASES)
