"""Where schemas are registered and looked up by id: the interface and its two implementations.

:class:`ConfluentSchemaStore` talks to any Confluent-compatible registry (the store's own in
``featurestore.schema_registry``, or Confluent's) through confluent-kafka's
``SchemaRegistryClient``. :class:`InMemorySchemaStore` implements the same interface for unit
tests and offline tools. Both cache: a schema id never changes meaning, so a lookup by id is
done once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from urllib.parse import quote

import httpx2
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import SecretStr

from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import SchemaError

if TYPE_CHECKING:
    from featurestore.config import SchemaRegistrySettings

__all__ = ["ConfluentSchemaStore", "InMemorySchemaStore", "SchemaStore", "value_subject"]


def value_subject(topic: str) -> str:
    """Return the registry subject of a topic's values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


class SchemaStore(Protocol):
    """Registers schemas under subjects and resolves schema ids."""

    def register(self, subject: str, schema_text: str) -> int:
        """Register (or find) ``schema_text`` under ``subject``; return its global id.

        Raises:
            SchemaError: the registry rejects the schema (invalid or incompatible).
            BackendUnavailableError: the registry cannot be reached.

        """
        ...

    def check_registration(self, subject: str, schema_text: str) -> None:
        """Raise what :meth:`register` would raise about the schema, registering nothing.

        A schema registered in ``subject`` already, or a subject without a version, passes.

        Raises:
            SchemaError: the registry would reject the schema as incompatible, with the
                message :meth:`register` would give.
            BackendUnavailableError: the registry cannot be reached.

        """
        ...

    def schema_text(self, schema_id: int) -> str:
        """Return the schema text of a global id.

        Raises:
            NotFoundError: no schema has this id.
            BackendUnavailableError: the registry cannot be reached.

        """
        ...

    def latest_schema_text(self, subject: str) -> str:
        """Return the text of the latest schema registered under ``subject``.

        Raises:
            NotFoundError: nothing is registered under the subject.
            BackendUnavailableError: the registry cannot be reached.

        """
        ...


class InMemorySchemaStore:
    """A registry in a dict: ids count up from 1, identical text gets the same id.

    It checks no compatibility: a subject accepts every schema unless told to refuse
    (:meth:`refuse`), as a registry refuses one that breaks the subject's level.
    """

    def __init__(self) -> None:
        """Start empty: the first schema registered gets id 1."""
        self._ids: dict[str, int] = {}
        self._texts: dict[int, str] = {}
        self._latest: dict[str, int] = {}
        self._held: set[tuple[str, int]] = set()
        self._refusals: dict[str, str] = {}
        self._lock = threading.Lock()

    def refuse(self, subject: str, reason: str) -> None:
        """Refuse from now on every schema that ``subject`` does not hold yet, saying ``reason``."""
        with self._lock:
            self._refusals[subject] = reason

    def register(self, subject: str, schema_text: str) -> int:
        """Register a schema (refused under a subject told to refuse it, :meth:`refuse`)."""
        with self._lock:
            self._check(subject, schema_text)
            if schema_text not in self._ids:
                new_id = len(self._ids) + 1
                self._ids[schema_text] = new_id
                self._texts[new_id] = schema_text
            self._latest[subject] = self._ids[schema_text]
            self._held.add((subject, self._ids[schema_text]))
            return self._ids[schema_text]

    def check_registration(self, subject: str, schema_text: str) -> None:
        """Raise what :meth:`register` would, registering nothing."""
        with self._lock:
            self._check(subject, schema_text)

    def _check(self, subject: str, schema_text: str) -> None:
        reason = self._refusals.get(subject)
        held = (subject, self._ids.get(schema_text)) in self._held
        if reason is not None and not held:
            raise SchemaError(f"registering a schema under {subject!r}: {reason}")

    def schema_text(self, schema_id: int) -> str:
        """Return the schema text of an id."""
        try:
            return self._texts[schema_id]
        except KeyError:
            raise NotFoundError(f"no schema with id {schema_id}") from None

    def latest_schema_text(self, subject: str) -> str:
        """Return the schema last registered under ``subject``."""
        try:
            return self._texts[self._latest[subject]]
        except KeyError:
            raise NotFoundError(f"no schema registered under subject {subject!r}") from None


class ConfluentSchemaStore:
    """A Confluent-compatible registry reached over REST."""

    def __init__(
        self,
        url: str,
        *,
        client: SchemaRegistryClient | None = None,
        user_info: SecretStr | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
    ) -> None:
        """A store of the registry at ``url``.

        Args:
            url: The registry's base URL (several comma-separated: tried in turn).
            client: A client of confluent-kafka's to use instead of one made here.
            user_info: ``user:password`` of HTTP basic auth (``basic.auth.user.info``).
            timeout_s: How long one HTTP request may take (connecting, and each read).
                Confluent's client has none by default: a registry that accepts and never
                answers would be waited for without end.
            max_retries: How many more times a request that failed on the way is sent.
        """
        self.url = url
        config: dict[str, object] = {"url": url, "timeout": timeout_s, "max.retries": max_retries}
        if user_info is not None:
            config["basic.auth.user.info"] = user_info.get_secret_value()
        self._client = client or SchemaRegistryClient(config)
        self._owns_client = client is None
        self._registered: dict[tuple[str, str], int] = {}
        self._texts: dict[int, str] = {}

    def __enter__(self) -> ConfluentSchemaStore:
        """The store itself; leaving closes it."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the registry client's HTTP connections (:meth:`close`)."""
        self.close()

    def close(self) -> None:
        """Close the HTTP connections of the client made here (a given client is its owner's).

        Schemas already registered or looked up stay answered from memory; anything else
        raises afterwards.
        """
        if self._owns_client:
            self._client.close()

    @classmethod
    def from_settings(cls, settings: SchemaRegistrySettings) -> ConfluentSchemaStore:
        """The store of the configured registry, with its credentials when it has some."""
        return cls(
            settings.url,
            user_info=settings.basic_auth_user_info,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def register(self, subject: str, schema_text: str) -> int:
        """Register a schema under a subject (the registry checks compatibility)."""
        key = (subject, schema_text)
        cached = self._registered.get(key)
        if cached is not None:
            return cached
        with self._translated(f"registering a schema under {subject!r}"):
            schema_id = int(self._client.register_schema(subject, Schema(schema_text, "AVRO")))
        self._registered[key] = schema_id
        self._texts[schema_id] = schema_text
        return schema_id

    def check_registration(self, subject: str, schema_text: str) -> None:
        """Ask the registry whether it would register the schema under ``subject``.

        First whether the subject holds it already (``POST /subjects/{subject}``: then
        ``register`` answers its id, whatever the level), then Confluent's compatibility test
        against the versions the subject's level names (``POST
        /compatibility/subjects/{subject}/versions?verbose=true``), which registers nothing. A
        refusal is worded as this project's registry words a refused registration
        (``featurestore/schema_registry/registry.py``), with the subject's level, so that it
        reads as :meth:`register`'s error does; Confluent's own registry words it a little
        differently.
        """
        if (subject, schema_text) in self._registered:
            return
        doing = f"registering a schema under {subject!r}"
        schema = Schema(schema_text, "AVRO")
        name = quote(subject, safe="")
        with self._translated(doing):
            try:
                self._client.lookup_schema(subject, schema)
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
            else:
                return
            # confluent-kafka's test_compatibility answers only true or false: the reasons
            # (verbose) are read through its REST client, with its URLs, auth and retries.
            rest: Any = self._client._rest_client
            answer = rest.post(
                f"compatibility/subjects/{name}/versions?verbose=true", body=schema.to_dict()
            )
            if answer.get("is_compatible", True):
                return
            level = rest.get(f"config/{name}", {"defaultToGlobal": "true"})["compatibilityLevel"]
        details = list(answer.get("messages", []))
        raise SchemaError(
            f"{doing} at {self.url}: Schema being registered is incompatible with an earlier"
            f' schema for subject "{subject}" ({level}), details: {details} (HTTP 409)'
        )

    def schema_text(self, schema_id: int) -> str:
        """Fetch the schema of an id (once per process)."""
        cached = self._texts.get(schema_id)
        if cached is not None:
            return cached
        with self._translated(f"looking up schema id {schema_id}"):
            text = str(self._client.get_schema(schema_id).schema_str)
        self._texts[schema_id] = text
        return text

    def latest_schema_text(self, subject: str) -> str:
        """Fetch the latest schema of a subject (confluent-kafka's client may cache it)."""
        with self._translated(f"looking up the latest schema of {subject!r}"):
            return str(self._client.get_latest_version(subject).schema.schema_str)

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Raise the client's errors inside the block as the store's, naming ``doing``."""
        try:
            yield
        except SchemaRegistryError as exc:
            raise self._translate(exc, doing) from exc
        except (httpx2.HTTPError, OSError) as exc:
            raise BackendUnavailableError(
                f"schema registry at {self.url} is unreachable: {exc}"
            ) from exc

    def _translate(self, exc: SchemaRegistryError, doing: str) -> Exception:
        status = exc.http_status_code
        message = f"{doing} at {self.url}: {exc.error_message} (HTTP {status})"
        if status == 404:
            return NotFoundError(message)
        if status in (409, 422):
            return SchemaError(message)
        if status in (401, 403):
            # Not retryable: the credentials (FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO)
            # are missing or wrong, and stay so until the settings change.
            return ConfigurationError(
                f"{message}: the registry refused the credentials; set "
                "FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO=USER:PASSWORD"
            )
        return BackendUnavailableError(message)
