"""What training holds of the store's connections, and what it shows of them."""

from __future__ import annotations

from typing import Any
from typing import cast

from models.training.run import TrainingContext


def test_the_connection_string_s_password_is_not_in_the_repr() -> None:
    context = TrainingContext(
        store=cast(Any, "store"), dsn="postgresql://fs:pa55word@db/fs", registry=cast(Any, "mlflow")
    )
    assert "pa55word" not in repr(context)
    assert context.dsn.endswith("@db/fs")
