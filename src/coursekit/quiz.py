"""Concept questions: multiple choice, answered without code, each answer explained.

A chapter asks a question right after the idea it tests, in a cell whose input the site removes
(tag ``remove-input``; on Colab a folded form titled by the cell's first comment)::

    # Concept question: how far can ten steps go?
    from coursekit.quiz import ask

    ask("Ten steps of length 0.25, each clipped to the box: at most how far from x?",
        {"2.5": "Each step moves at most 0.25, and clipping only shortens it.",
         "0.25": "That is one step; there are ten.",
         "0.09": "That is the largest RMS change per pixel, 2.5 / √784."},
        answer="2.5")

The question is plain HTML built from ``<details>`` elements: each choice opens to its
explanation, which starts with "Right." or "Not quite." (words, not only colour, carry the
verdict). It needs no JavaScript and no kernel once shown, so it works the same on the static
site (also offline, and with JavaScript off), in Jupyter and on Colab, and a keyboard or a screen
reader can use it (a ``<summary>`` is a button to them). Text is plain (no TeX: write ε, ‖r‖₂,
x + r); `backticks` become code.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass

__all__ = ["Quiz", "ask"]

STYLE = """<style>
.coursekit-quiz { border: 1px solid #6b6b6b; border-radius: 6px; padding: 0.6em 0.9em;
  margin: 0.8em 0; max-width: 44em; background: #fafafa; color: #1a1a1a; }
.coursekit-quiz p { margin: 0.3em 0; }
.coursekit-quiz details { border: 1px solid #c4c4c4; border-radius: 4px; margin: 0.35em 0;
  padding: 0.25em 0.6em; background: #ffffff; }
.coursekit-quiz summary { cursor: pointer; }
.coursekit-quiz .coursekit-quiz-feedback { padding: 0.3em 0.5em; margin-top: 0.3em;
  border-left: 4px solid #6b6b6b; }
.coursekit-quiz .coursekit-quiz-right { border-left-color: #1b7a3a; background: #eaf5ee; }
.coursekit-quiz .coursekit-quiz-wrong { border-left-color: #9a4d00; background: #fbf0e4; }
</style>"""


def _inline(text: str) -> str:
    """``text`` escaped for HTML, with `backticks` as <code>."""
    escaped = html.escape(text, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


@dataclass(frozen=True)
class Quiz:
    """One multiple-choice question: ``choices`` {answer text: explanation}, in display order;
    ``answer`` the right choice's text. Shown as HTML (``_repr_html_``) or as text."""

    question: str
    choices: dict[str, str]
    answer: str

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"question must be a non-empty str, got {self.question!r}")
        if not isinstance(self.choices, dict) or len(self.choices) < 2:
            raise ValueError(f"choices must be a dict of at least two answers, got {self.choices!r}")
        if self.answer not in self.choices:
            raise ValueError(f"answer must be one of the choices {list(self.choices)}, got {self.answer!r}")
        for text, why in [(self.question, "")] + list(self.choices.items()):
            if not isinstance(why, str) or (text != self.question and not why.strip()):
                raise ValueError(f"every choice needs its explanation; {text!r} has {why!r}")
            if "$" in text + why:
                raise ValueError(f"quiz text is plain (no TeX: write ε, ‖r‖₂): {text + why!r}")

    @property
    def key(self) -> str:
        """A stable id for the question (its HTML id), from its text."""
        return "quiz-" + hashlib.sha256(self.question.encode()).hexdigest()[:10]

    def _repr_html_(self) -> str:
        parts = [
            STYLE,
            f'<div class="coursekit-quiz" role="group" aria-labelledby="{self.key}">',
            f'<p id="{self.key}"><strong>Check your understanding.</strong> {_inline(self.question)}</p>',
            "<p><em>Open an answer to see whether it is right, and why.</em></p>",
        ]
        for letter, (text, why) in zip("ABCDEFGH", self.choices.items()):
            right = text == self.answer
            verdict, kind = ("Right.", "right") if right else ("Not quite.", "wrong")
            parts.append(
                f'<details class="coursekit-quiz-choice" data-right="{str(right).lower()}">'
                f"<summary>{letter}. {_inline(text)}</summary>"
                f'<p class="coursekit-quiz-feedback coursekit-quiz-{kind}"><strong>{verdict}</strong> '
                f"{_inline(why)}</p></details>"
            )
        return "\n".join(parts + ["</div>"])

    def __repr__(self) -> str:
        lines = [f"Check your understanding. {self.question}"]
        lines += [f"  {letter}. {text}" for letter, text in zip("ABCDEFGH", self.choices)]
        return "\n".join(lines)


def ask(question: str, choices: dict[str, str], answer: str) -> Quiz:
    """A concept question to show as a cell's result: ``choices`` maps each answer (in the order
    shown) to its explanation; ``answer`` is the right one. At most eight choices.

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    if isinstance(choices, dict) and len(choices) > 8:
        raise ValueError(f"at most eight choices, got {len(choices)}")
    return Quiz(question, dict(choices), answer)
