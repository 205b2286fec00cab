"""A plan asks whether the registry would take each schema ``registry apply`` registers first.

``apply`` registers the store's own event schemas before anything else and stops at the first
the registry refuses; ``plan`` registers nothing, so it tests each schema instead and marks a
refused one with the error ``apply`` would stop at.
"""

from __future__ import annotations

import pytest

from featurestore.apply import _check
from featurestore.config import load_settings
from featurestore.definitions import Definitions
from featurestore.definitions.changes import Action
from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError
from featurestore.events import AvroSerializer
from featurestore.events import InMemorySchemaStore
from featurestore.events import bundled_schema
from featurestore.events.model import Quote
from featurestore.events.model import Trade

_NOTHING = Definitions("fs_plan_schemas", (), (), ())
_OWN = {"trades": bundled_schema("trade").text, "quotes": bundled_schema("quote").text}
_REASON = "incompatible with version 1 (BACKWARD): quote_id has no default"


def test_a_schema_the_registry_refuses_is_planned_refused_with_applys_message() -> None:
    store = InMemorySchemaStore()
    store.refuse("quotes-value", _REASON)

    refused = _check(load_settings({}), _NOTHING, store, _OWN)

    with pytest.raises(SchemaError) as applying:  # what apply's registration raises
        AvroSerializer.for_topic(store, "quotes", Quote)
    [change] = refused
    assert (change.kind, change.name) == ("event schema", "quotes-value")
    assert change.action is Action.CHANGE
    assert change.refused == str(applying.value)
    assert change.refused == f"registering a schema under 'quotes-value': {_REASON}"
    assert change.lines()[-1] == f"! event schema quotes-value: refused: {change.refused}"
    with pytest.raises(NotFoundError):  # the plan registered nothing
        store.latest_schema_text("quotes-value")
    with pytest.raises(NotFoundError):
        store.latest_schema_text("trades-value")


def test_a_schema_held_already_and_a_new_subject_are_accepted() -> None:
    store = InMemorySchemaStore()
    AvroSerializer.for_topic(store, "quotes", Quote)
    store.refuse("quotes-value", _REASON)  # refuses other schemas, not the one it holds

    assert _check(load_settings({}), _NOTHING, store, _OWN) == []
    assert AvroSerializer.for_topic(store, "trades", Trade).schema_id == 2


def test_the_in_memory_store_checks_as_it_registers() -> None:
    store = InMemorySchemaStore()
    store.register("s", "A")
    store.refuse("s", "no")
    store.check_registration("s", "A")
    assert store.register("s", "A") == 1
    with pytest.raises(SchemaError, match=r"^registering a schema under 's': no$"):
        store.check_registration("s", "B")
    with pytest.raises(SchemaError, match=r"^registering a schema under 's': no$"):
        store.register("s", "B")
    assert store.latest_schema_text("s") == "A"
    store.check_registration("other", "B")
