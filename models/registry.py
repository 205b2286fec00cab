"""The MLflow model registry: versions, the ``champion`` alias, loading by alias.

MLflow's exceptions stop here: a missing model or alias is ``None`` or
:class:`~featurestore.errors.NotFoundError`, a server that cannot be reached is
:class:`~featurestore.errors.BackendUnavailableError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any

import requests

from featurestore.errors import BackendUnavailableError
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError
from featurestore.mlflow_models import load_pyfunc_model
from models._mlflow import MlflowClient
from models._mlflow import MlflowException
from models._mlflow import mlflow
from models._mlflow import quiet

__all__ = ["CHAMPION", "ModelRef", "ModelRegistry", "mlflow_error"]

CHAMPION = "champion"
"""The alias Predict and the scorer serve."""
PROMOTED_AT = "promoted_at"
"""Tag prefix of the time an alias was set on a version (``promoted_at.champion``)."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    name: str
    version: str
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    registered_at: datetime | None = None
    """When the version was registered."""

    def since(self, alias: str = CHAMPION) -> datetime | None:
        """Since when ``alias`` points at this version, else when the version was registered.

        From the ``promoted_at.<alias>`` tag :meth:`ModelRegistry.promote` sets: MLflow keeps no
        time for aliases.
        """
        promoted = self.tags.get(f"{PROMOTED_AT}.{alias}")
        return datetime.fromisoformat(promoted) if promoted else self.registered_at

    @property
    def uri(self) -> str:
        """``models:/name/version``."""
        return f"models:/{self.name}/{self.version}"


def mlflow_error(exc: Exception, doing: str) -> FeatureStoreError:
    """The store's error for an MLflow client's ``exc`` met while ``doing`` (the one mapping).

    A missing resource is :class:`NotFoundError`; an MLflow server that answered with another
    error, :class:`FeatureStoreError`; no answer, :class:`BackendUnavailableError`.
    """
    if isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return NotFoundError(f"{doing}: {exc.message}")
    if isinstance(exc, MlflowException) and "API request" not in str(exc):
        return FeatureStoreError(f"{doing}: {exc}")
    return BackendUnavailableError(f"{doing}: MLflow is unreachable: {exc}")


_ERRORS = (MlflowException, requests.RequestException, OSError)


def _ref(mv: Any) -> ModelRef:
    created = mv.creation_timestamp
    registered = None if created is None else datetime.fromtimestamp(created / 1000, UTC)
    return ModelRef(mv.name, str(mv.version), mv.run_id, dict(mv.tags), registered)


class ModelRegistry:
    """The registry of one MLflow tracking server."""

    def __init__(self, tracking_uri: str) -> None:
        """Use ``tracking_uri`` for runs and the registry alike (one server, as the stack runs it).

        Nothing is contacted until the first call.
        """
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def alias(self, name: str, alias: str = CHAMPION) -> ModelRef | None:
        """The version ``alias`` points at, or ``None`` when the model or alias does not exist."""
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except _ERRORS as exc:
            error = mlflow_error(exc, f"reading alias {alias!r} of model {name!r}")
            if isinstance(error, NotFoundError) or (
                isinstance(exc, MlflowException) and exc.error_code == "INVALID_PARAMETER_VALUE"
            ):
                return None
            raise error from exc
        return _ref(mv)

    def with_alias(self, alias: str = CHAMPION) -> list[str]:
        """The names of the registered models that have a version aliased ``alias``, sorted.

        Every page of MLflow's search: a registry of many models is read whole.
        """
        names: list[str] = []
        token: str | None = None
        try:
            while True:
                page = self.client.search_registered_models(max_results=100, page_token=token)
                names += [m.name for m in page if alias in (m.aliases or {})]
                token = page.token
                if not token:
                    return sorted(names)
        except _ERRORS as exc:
            raise mlflow_error(exc, "listing the registered models") from exc

    def input_names(self, ref: ModelRef) -> tuple[str, ...]:
        """The input column names of a version's signature (``view__feature``); () without one."""
        try:
            self._set_global_uris()
            with quiet():
                info = mlflow.models.get_model_info(ref.uri)
        except _ERRORS as exc:
            raise mlflow_error(exc, f"reading the signature of {ref.uri}") from exc
        schema = None if info.signature is None else info.signature.inputs
        if schema is None or not schema.has_input_names():
            return ()
        return tuple(schema.input_names())

    def version(self, name: str, version: str) -> ModelRef:
        """One version, with its tags."""
        try:
            mv = self.client.get_model_version(name, version)
        except _ERRORS as exc:
            raise mlflow_error(exc, f"reading version {version} of model {name!r}") from exc
        return _ref(mv)

    def promote(self, name: str, version: str, alias: str = CHAMPION) -> None:
        """Point ``alias`` at ``version`` (readers pick it up on their next poll), and say when."""
        try:
            self.client.set_registered_model_alias(name, alias, version)
            now = datetime.now(UTC).isoformat()
            self.client.set_model_version_tag(name, version, f"{PROMOTED_AT}.{alias}", now)
        except _ERRORS as exc:
            raise mlflow_error(exc, f"setting alias {alias!r} of model {name!r}") from exc

    def tag(self, ref: ModelRef, tags: dict[str, str]) -> None:
        """Set tags on a model version."""
        try:
            for key, value in tags.items():
                self.client.set_model_version_tag(ref.name, ref.version, key, value)
        except _ERRORS as exc:
            raise mlflow_error(exc, f"tagging version {ref.version} of {ref.name!r}") from exc

    def load(self, ref: ModelRef) -> Any:
        """The ``mlflow.pyfunc`` model of a version."""
        try:
            self._set_global_uris()
            return load_pyfunc_model(ref.uri)
        except _ERRORS as exc:
            raise mlflow_error(exc, f"loading {ref.uri}") from exc

    def _set_global_uris(self) -> None:
        """Make this server MLflow's global tracking and registry server.

        ``models:/`` URIs and artifacts under ``mlflow-artifacts:/`` resolve through the global
        URIs, so a process that never logged a run (the scorer, the monitor) must set them.
        """
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def delete(self, name: str) -> None:
        """Delete a registered model and all its versions (tests clean up with it)."""
        try:
            self.client.delete_registered_model(name)
        except _ERRORS as exc:
            raise mlflow_error(exc, f"deleting model {name!r}") from exc
