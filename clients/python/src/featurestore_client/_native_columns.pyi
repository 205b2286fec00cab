"""The native decoder's one function (``_native_columns.c``)."""

Column = tuple[int, bytes, bytes, bytes, bytes]
"""A decoded column: its kind, values, whether each is set, statuses, event times in µs."""
Span = tuple[int, int]
"""Where a column the decoder leaves to protobuf lies in the response: start and stop."""

def decode(data: bytes, rows: int, /) -> tuple[list[str], list[Column | Span]]:
    """The feature names and columns of a GetOnlineFeaturesResponse (ValueError: not one)."""
