"""Folded answers: a closed <details> whose only visible line is the summary; the Markdown subset by hand."""
from __future__ import annotations

import re

import pytest

from csa_lib.notebook.teaching import ANSWER_CLASS, answer, markdown_to_html


def test_markdown_subset_by_hand():
    assert markdown_to_html("**Answer.** a *b* `c*d*` <e> & f\n\nsecond\nline") == (
        "<p><strong>Answer.</strong> a <em>b</em> <code>c*d*</code> &lt;e&gt; &amp; f</p>\n<p>second line</p>")
    assert markdown_to_html("2 * 3 * 4 and x*y") == "<p>2 * 3 * 4 and x*y</p>"  # not emphasis


def test_answer_is_closed_details_with_summary_first():
    shown = answer("The argmax is the **same**.", results="D_max = 1.5 <ok>", exercise=2)
    page = shown._repr_html_()
    assert page.startswith(f'<details class="{ANSWER_CLASS}"><summary>')
    assert not re.search(r"<details[^>]*\bopen\b", page)  # closed until clicked
    summary = re.search(r"<summary>(.*?)</summary>", page, flags=re.S)[1]
    assert "Answer to exercise 2" in summary and "same" not in summary and "D_max" not in summary
    body = page[page.index("</summary>"):]
    assert "<strong>same</strong>" in body and "D_max = 1.5 &lt;ok&gt;</pre>" in body
    assert page.count("<details") == page.count("</details>") == 1
    assert "same" not in repr(shown)  # the plain-text fallback gives nothing away either


def test_empty_answer_is_refused():
    with pytest.raises(ValueError, match="needs its text"):
        answer("  ")
