"""Exercise answers that stay folded until a student opens them, in every notebook front end.

An answer cell's code ends with `answer(...)`: its output is an HTML ``<details>`` element, closed, whose
only visible line is its summary ("Answer to exercise N: click to open"). Why this and not cell
metadata: JupyterLab 4 and Notebook 7 show a collapsed cell's first source line (so a markdown answer
hidden by `jupyter.source_hidden` shows its first sentence), and running a cell ("Run All") unfolds
its outputs whatever `jupyter.outputs_hidden` said. A closed ``<details>`` stays closed when the cell
runs again, is kept as it is in the stored outputs, and renders the same in JupyterLab, Notebook 7,
VS Code, Colab and on GitHub. The answer cell itself keeps `jupyter.source_hidden` (its code checks
the answer with asserts) and starts with a comment line that gives nothing away.

The answer text is a small subset of Markdown (paragraphs, **bold**, *italic*, `code`), turned into
HTML here so the package needs no Markdown library; write formulas in plain Unicode (D_max, ‖x‖).
"""
from __future__ import annotations

import html
import re

__all__ = ["Answer", "ANSWER_CLASS", "answer", "markdown_to_html"]

ANSWER_CLASS = "csa-answer"
_INLINE = ((re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"))


def markdown_to_html(text: str) -> str:
    """Paragraphs (blank-line separated), **bold**, *italic* and `code` -> HTML; everything else escaped."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    out = []
    for paragraph in paragraphs:
        # code spans first, so that * inside them stays literal: split on them and format the rest
        pieces = re.split(r"(`[^`]+`)", html.escape(paragraph, quote=False))
        formatted = []
        for piece in pieces:
            if piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
                formatted.append(f"<code>{piece[1:-1]}</code>")
                continue
            for pattern, replacement in _INLINE:
                piece = pattern.sub(replacement, piece)
            formatted.append(piece)
        out.append("<p>" + " ".join("".join(formatted).split()) + "</p>")
    return "\n".join(out)


class Answer:
    """A folded answer: renders as a closed HTML ``<details>`` (text/html), a one-line note as text/plain."""

    def __init__(self, text: str, results: str = "", exercise: int | None = None) -> None:
        if not text.strip():
            raise ValueError("an answer needs its text (the explanation the student reads after the click)")
        self.text, self.results, self.exercise = text, results, exercise

    @property
    def summary(self) -> str:
        """The only line shown before the click."""
        which = f" to exercise {self.exercise}" if self.exercise is not None else ""
        return f"Answer{which}: click to open"

    def _repr_html_(self) -> str:
        body = markdown_to_html(self.text)
        if self.results:
            body += f'\n<pre class="{ANSWER_CLASS}-results">{html.escape(self.results.rstrip())}</pre>'
        return (f'<details class="{ANSWER_CLASS}"><summary><strong>{html.escape(self.summary)}</strong></summary>\n'
                f'<div class="{ANSWER_CLASS}-body">\n{body}\n</div></details>')

    def __repr__(self) -> str:
        return f"({self.summary.split(':')[0]}: folded, open it in Jupyter)"


def answer(text: str, results: str = "", exercise: int | None = None) -> Answer:
    """The folded answer to show as an answer cell's last line: `text` (Markdown subset) and computed `results`."""
    return Answer(text, results, exercise)
