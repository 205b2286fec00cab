"""The benchmarks quote their module docstrings in bench/RESULTS.md, a paragraph a line."""

from __future__ import annotations

import pytest

from bench.stats import doc_paragraph

DOC = """Title line.

What it measures,
over two lines.

How to read it.
"""


def test_a_paragraph_comes_on_one_line() -> None:
    assert doc_paragraph(DOC, 1) == "What it measures, over two lines."
    assert doc_paragraph(DOC, 2) == "How to read it."


def test_a_module_without_a_docstring_is_named() -> None:
    with pytest.raises(ValueError, match="no docstring"):
        doc_paragraph(None, 1)
