"""Small helpers the benchmarks share: percentiles, Markdown tables, report text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["doc_paragraph", "markdown_table", "percentiles_ms"]


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90 and p99 of latencies given in seconds, in milliseconds."""
    values = np.asarray(seconds, dtype=float) * 1000.0
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; floats are shown with 3 significant decimals."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def doc_paragraph(doc: str | None, number: int) -> str:
    """Paragraph ``number`` (0-based) of a module docstring on one line: a report's prose."""
    if doc is None:
        raise ValueError("the benchmark module has no docstring to quote")
    return doc.strip().split("\n\n")[number].replace("\n", " ")
