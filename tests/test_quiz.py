"""Concept questions: one right answer, every answer explained, plain HTML that needs no script."""

import re
from html.parser import HTMLParser

import pytest

from coursekit.quiz import Quiz, ask


def question():
    return ask(
        "Ten steps of length 0.25, each clipped to the box: at most how far from `x`?",
        {"0.25": "That is one step.", "2.5": "Each step moves at most 0.25.", "25 < 3": "Escaped."},
        answer="2.5",
    )


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_html_has_one_right_answer_and_an_explanation_for_each():
    html = question()._repr_html_()
    parser = Elements()
    parser.feed(html)
    choices = [a for t, a in parser.tags if t == "details"]
    assert [c["data-right"] for c in choices] == ["false", "true", "false"]
    assert html.count("<summary>") == 3 and html.count('class="coursekit-quiz-feedback') == 3
    assert html.count("Not quite.") == 2 and html.count("Right.") == 1
    assert "<code>x</code>" in html and "25 &lt; 3" in html  # code marked up, text escaped
    assert "<script" not in html and "http" not in html  # no JavaScript, nothing fetched
    assert re.search(r'aria-labelledby="(quiz-\w+)"', html)[1] == question().key


def test_the_text_form_lists_the_choices():
    assert repr(question()).splitlines()[1:] == ["  A. 0.25", "  B. 2.5", "  C. 25 < 3"]


@pytest.mark.parametrize(
    "arguments, match",
    [
        (("", {"a": "x", "b": "y"}, "a"), "question"),
        (("q", {"a": "x"}, "a"), "at least two"),
        (("q", {"a": "x", "b": "y"}, "c"), "answer must be one of"),
        (("q", {"a": "x", "b": ""}, "a"), "explanation"),
        (("q $x$", {"a": "x", "b": "y"}, "a"), "no TeX"),
        (("q", {str(i): "x" for i in range(9)}, "1"), "at most eight"),
    ],
)
def test_bad_questions_are_refused_with_the_reason(arguments, match):
    with pytest.raises(ValueError, match=match):
        ask(*arguments)


def test_a_quiz_is_a_value():
    assert question() == question() and isinstance(question(), Quiz)
