"""Models from the MLflow model registry, for Predict: alias -> version, version -> loaded model.

The contract with the models: a model is registered in MLflow and loadable with
``mlflow.pyfunc.load_model("models:/NAME/VERSION")``; its signature's input column names are its
features, written ``view__feature``; ``predict(DataFrame)`` returns one score per row (1-D), or
class probabilities (2-D; the score is the last column, the positive class). A version that breaks
this contract (no signature, an input that is not a feature, an output of another shape or not of
numbers) is a :class:`ConfigurationError`, FAILED_PRECONDITION: the registered version has to be
fixed; an exception raised by the model itself is the server's error, INTERNAL, with its message.
A version found unservable is not loaded again (a version's files never change in MLflow).

Scoring is the native model's on a NumPy matrix (:mod:`.native`): the input schema is checked once
when a version is loaded, not on every call.

A promoted model is picked up without a restart: an alias is resolved to a version through the
registry's REST API and trusted for ``alias_ttl_s`` (5 s by default), then refreshed in the
background while the known version keeps answering; loaded models are cached by
(name, version), so moving an alias back and forth never reloads. Lookups go through httpx with
the backend timeout and no retries, so that an MLflow that is down answers UNAVAILABLE at once
rather than after MLflow's own retry loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import numpy as np
import pandas as pd

from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.mlflow_models import load_pyfunc_model
from featurestore.mlflow_models import python_model_of
from featurestore.mlflow_plugins import skip_feast_header_provider
from featurestore.online import FeatureRef
from featurestore.service.native import Scorer
from featurestore.service.native import SequenceScoring
from featurestore.service.native import native_scorer

__all__ = ["LoadedModel", "ServedModels", "feature_ref_of_column", "load_pyfunc", "served_model"]

logger = logging.getLogger(__name__)

_API = "/api/2.0/mlflow"
CHAMPION = "champion"
"""The alias Predict serves when a request names neither an alias nor a version."""
_MAX_MODELS = 16


def feature_ref_of_column(column: str) -> FeatureRef:
    """``rolling_1m__vwap_5m`` -> ``rolling_1m:vwap_5m`` (:meth:`FeatureRef.of_column`)."""
    ref = FeatureRef.of_column(column)
    if ref is None:
        raise ConfigurationError(
            f"model input column {column!r} is not a feature named 'view__feature'"
        )
    return ref


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to score, with the features it reads, in its input order."""

    name: str
    version: str
    columns: tuple[str, ...]
    """The signature's input names (``view__feature``)."""
    refs: tuple[FeatureRef, ...]
    model: Any
    """The ``mlflow.pyfunc.PyFuncModel``."""
    scorer: Scorer | None = None
    """The native scorer of a matrix (None: ``model.predict`` on a DataFrame)."""
    runtime: str = "pyfunc"
    """What scores: ``xgboost``, ``sklearn``, ``onnxruntime`` or ``pyfunc``."""
    sequence: SequenceScoring | None = None
    """Set for a model of sequences of rows (the LSTM): Predict assembles them."""

    def _fail(self, exc: Exception) -> FeatureStoreError:
        return FeatureStoreError(
            f"model {self.name} version {self.version} failed to predict: {exc}"
        )

    def score(self, features: np.ndarray) -> np.ndarray:
        """One score per row of ``features`` (rows x columns, NaN where missing); blocks."""
        try:
            if self.scorer is not None:
                out = self.scorer(features)
            else:
                out = self.model.predict(pd.DataFrame(features, columns=list(self.columns)))
        except Exception as exc:  # a model is user code: any failure is the model's
            raise self._fail(exc) from exc
        return self._checked(out, len(features))

    def _checked(self, out: Any, rows: int) -> np.ndarray:
        """The scores of a model's output: one per row (1-D), or the last column (2-D)."""
        where = f"model {self.name} version {self.version}"
        try:
            raw = np.asarray(out)
            if out is None or raw.dtype.kind not in "biufO":  # O: numbers as Python objects
                raise TypeError(raw.dtype)
            raw = raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            what = "no output" if out is None else "values that are not numbers"
            raise ConfigurationError(
                f"{where} returned {what}; a model returns one number per row"
            ) from exc
        if raw.ndim not in (1, 2) or (raw.ndim == 2 and raw.shape[1] == 0):
            raise ConfigurationError(
                f"{where} returned an output of shape {raw.shape} for {rows} rows; a model "
                "returns one score per row (1-D) or class probabilities (2-D)"
            )
        scores = raw[:, -1] if raw.ndim == 2 else raw
        if len(scores) != rows:
            raise ConfigurationError(
                f"{where} returned {len(scores)} scores for {rows} rows; a model returns one "
                "score per row"
            )
        return scores

    def score_step(self, rows: np.ndarray, state: Any) -> np.ndarray:
        """A sequence model's scores one step after ``state`` (see :class:`SequenceScoring`)."""
        assert self.sequence is not None
        try:
            out = self.sequence.sequence_step(rows, state)
        except Exception as exc:  # a model is user code: any failure is the model's
            raise self._fail(exc) from exc
        return self._checked(out, len(rows))


def _one_thread_numerics() -> None:
    """One BLAS / OpenMP thread per call in this process.

    A Predict call scores a few rows: waking a thread pool for them cost milliseconds on the
    loaded 2-core machine (OpenBLAS under scikit-learn's linear models, OpenMP under XGBoost),
    more than the arithmetic; calls run concurrently instead.
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(1)


def load_pyfunc(tracking_uri: str, name: str, version: str) -> LoadedModel:
    """Load ``models:/NAME/VERSION`` as Predict scores with it (blocks; the feed uses it too)."""
    import mlflow  # after featurestore.mlflow_plugins, imported above: telemetry off

    skip_feast_header_provider()  # or the first REST call imports all of Feast
    _one_thread_numerics()

    mlflow.set_tracking_uri(tracking_uri)
    try:
        model = load_pyfunc_model(f"models:/{name}/{version}")
    except Exception as exc:  # MLflow raises many types while downloading and loading
        raise FeatureStoreError(f"model {name} version {version} cannot be loaded: {exc}") from exc
    return served_model(model, name, version)


def served_model(model: Any, name: str, version: str) -> LoadedModel:
    """The loaded ``mlflow.pyfunc`` model as Predict scores with it.

    Raises:
        ConfigurationError: naming the version, when it cannot be served.
    """
    where = f"model {name} version {version}"
    try:
        return _servable(model, name, version, where)
    except ConfigurationError as exc:
        message = str(exc)
        raise ConfigurationError(
            message if message.startswith(where) else f"{where}: {message}"
        ) from exc


def _servable(model: Any, name: str, version: str, where: str) -> LoadedModel:
    """The loaded ``model`` as Predict scores with it (ConfigurationError: it cannot be)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise ConfigurationError(f"{where} has no input signature")
    python_model = python_model_of(model)
    if isinstance(python_model, SequenceScoring):
        # Its signature also has the history's symbol and event_timestamp columns.
        columns = tuple(python_model.feature_columns)
        refs = tuple(map(feature_ref_of_column, columns))
        return LoadedModel(name, version, columns, refs, model, None, "onnxruntime", python_model)
    columns = tuple(schema.input_names())
    refs = tuple(map(feature_ref_of_column, columns))
    scorer, runtime = native_scorer(model, columns, where)
    return LoadedModel(name, version, columns, refs, model, scorer, runtime)


Loader = Callable[[str, str, str], LoadedModel]


class ServedModels:
    """Resolves (name, alias or version) to a loaded model, with the caches described above.

    Predict's read side of MLflow's registry: asynchronous, over its REST API, with the alias
    and model caches a server needs. :class:`models.registry.ModelRegistry` is the other side:
    the synchronous MLflow client that registers, promotes and loads for the offline jobs.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        alias_ttl_s: float = 5.0,
        timeout_s: float = 1.0,
        loader: Loader = load_pyfunc,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """The registry at ``tracking_uri``; ``loader`` loads a version (tests give their own)."""
        self._uri = tracking_uri.rstrip("/")
        self._ttl = alias_ttl_s
        self._loader = loader
        self._clock = clock
        self._http = httpx2.AsyncClient(base_url=self._uri + _API, timeout=timeout_s)
        self._aliases: dict[tuple[str, str], tuple[str, float]] = {}
        self._refreshing: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._models: OrderedDict[tuple[str, str], asyncio.Task[LoadedModel]] = OrderedDict()

    async def get(
        self, name: str, *, alias: str | None = None, version: str | None = None
    ) -> LoadedModel:
        """The model version named by ``version``, or by ``alias`` (resolved, cached briefly)."""
        if version is None:
            version = await self._version_of_alias(name, alias or CHAMPION)
        key = (name, version)
        task = self._models.get(key)
        if task is None or (
            task.done()
            and task.exception() is not None
            and not isinstance(task.exception(), ConfigurationError)
        ):
            # One load per version, shared by concurrent callers; a failed one is tried again,
            # unless the version itself cannot be served (its files never change).
            task = asyncio.ensure_future(self._load(name, version))
            self._models[key] = task
            while len(self._models) > _MAX_MODELS:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return await asyncio.shield(task)

    async def preload_champions(self) -> list[str]:
        """Load the champion of each registered model (the first 16 by name), one at a time.

        A server runs this in the background once it serves: the first Predict after a restart
        then finds its model loaded, where it waited for MLflow's import and the model's files
        (11 s on the loaded 2-core machine, past a 10 s deadline). A model that cannot be loaded
        is left to Predict's own error. Returns the names loaded.
        """
        found = await self._get("/registered-models/search", {"max_results": str(_MAX_MODELS)})
        names = [
            model["name"]
            for model in (found or {}).get("registered_models", [])
            if any(alias.get("alias") == CHAMPION for alias in model.get("aliases", []))
        ]
        loaded = []
        for name in names:
            try:
                await self.get(name, alias=CHAMPION)
            except FeatureStoreError as exc:
                logger.info("model %s not preloaded: %s", name, exc)
            else:
                loaded.append(name)
        if loaded:
            logger.info("loaded the champions of %s ahead of Predict", ", ".join(loaded))
        return loaded

    async def _load(self, name: str, version: str) -> LoadedModel:
        await self._check_version(name, version)
        return await asyncio.to_thread(self._loader, self._uri, name, version)

    async def _version_of_alias(self, name: str, alias: str) -> str:
        """The alias's version: resolved on first use, then refreshed off the call's path.

        Once older than the TTL, the cached version is still answered while one lookup per
        alias runs in the background (an MLflow round trip on the call's path cost ~18 ms in
        Predict's p99 every 5 s). A refresh that finds the alias gone drops it; one that
        cannot reach MLflow keeps it: a loaded champion keeps serving through an MLflow outage.
        """
        key = (name, alias)
        cached = self._aliases.get(key)
        if cached is None:
            return await self._resolve(name, alias)
        if cached[1] <= self._clock() and key not in self._refreshing:
            self._refreshing[key] = asyncio.ensure_future(self._refresh(name, alias))
        return cached[0]

    async def _resolve(self, name: str, alias: str) -> str:
        reply = await self._get("/registered-models/alias", {"name": name, "alias": alias})
        if reply is None:
            self._aliases.pop((name, alias), None)
            await self._check_model(name)
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        version = str(reply["model_version"]["version"])
        self._aliases[(name, alias)] = (version, self._clock() + self._ttl)
        return version

    async def _refresh(self, name: str, alias: str) -> None:
        try:
            await self._resolve(name, alias)
        except FeatureStoreError as exc:  # NotFound dropped it; an outage keeps the version
            logger.info("model %s alias %s not refreshed: %s", name, alias, exc)
        finally:
            self._refreshing.pop((name, alias), None)

    async def check_model(self, name: str) -> None:
        """Raise :class:`NotFoundError` unless ``name`` is a registered model (not cached)."""
        await self._check_model(name)

    async def _check_version(self, name: str, version: str) -> None:
        reply = await self._get("/model-versions/get", {"name": name, "version": version})
        if reply is None:
            await self._check_model(name)
            raise NotFoundError(f"model {name!r} has no version {version!r}")

    async def _check_model(self, name: str) -> None:
        if await self._get("/registered-models/get", {"name": name}) is None:
            raise NotFoundError(f"model {name!r} does not exist in the model registry")

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        """The JSON reply, or None when the registry says the thing does not exist."""
        try:
            response = await self._http.get(path, params=params)
        except httpx2.HTTPError as exc:
            raise BackendUnavailableError(
                f"model registry (MLflow) at {self._uri} unavailable: {exc}"
            ) from exc
        if response.status_code == 404 or (
            # MLflow answers an unknown alias with 400 INVALID_PARAMETER_VALUE "... not found."
            response.status_code == 400
            and (b"RESOURCE_DOES_NOT_EXIST" in response.content or b"not found" in response.content)
        ):
            return None
        if response.status_code >= 500:
            raise BackendUnavailableError(
                f"model registry (MLflow) at {self._uri} answered HTTP {response.status_code}"
            )
        if response.status_code == 400:
            # A name or alias MLflow does not accept ("Names cannot contain '/' or ':'"): the
            # caller's to fix. Its own message says which; the rest of its body is internals.
            raise ValidationError(f"model registry (MLflow) refuses it: {_message_of(response)}")
        if response.status_code != 200:
            raise FeatureStoreError(
                f"model registry (MLflow) refused {path}: HTTP {response.status_code} "
                f"{_message_of(response)}"
            )
        body: dict[str, Any] = response.json()
        return body

    async def close(self) -> None:
        """Stop the alias refreshes in flight, close the HTTP client."""
        for task in list(self._refreshing.values()):
            task.cancel()
        await self._http.aclose()


def _message_of(response: httpx2.Response) -> str:
    """The ``message`` of an MLflow error body (at most 200 characters), else its status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:200] if message else f"HTTP {response.status_code}"
