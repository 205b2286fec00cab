"""PredictionService: fetch a model's features online (or take them inline), score, log.

The hot path (every request without inline features, on the Redis store): the features are read
through the online store's row path into a NumPy matrix (:mod:`.predict_read`), the model version's
native scorer is called once for all entities (:mod:`.native`: XGBoost, scikit-learn or ONNX
Runtime on the array, the input schema checked when the version was loaded), and the response is
written as bytes around the stored values (:mod:`.predict_response`). A sequence model (the LSTM)
adds its entities' history from the offline store, kept as recurrent states per newest row
(:mod:`.sequence_history`). Once the response is written, a callback scheduled on the event loop
logs one PredictionLog per entity: it hands the call, in a few bytes, to the log's writer process
(:mod:`.prediction_log_process`), which encodes the records and produces them to Kafka on the
other core: the call never waits for Kafka, nor the serving loop for the records. Requests with
inline features, and stores other than Redis, take the general path
(:meth:`OnlineStore.read`, a message built per value); both answer the same (tested).

Missing features: only values that are PRESENT (fresh, non-null) reach the model; a value that is
NOT_FOUND, NULL_VALUE or OUTSIDE_MAX_AGE is passed as NaN, is unset in the response's feature
vector and null in the PredictionLog, and its status says which it was. Models must therefore
accept NaN (XGBoost does natively; others need an imputer in their pipeline). An inline feature
is a finite number, or NaN / an empty Value for a missing one; infinity is INVALID_ARGUMENT.

Idempotency: a call that carries the metadata ``idempotency-key`` gets prediction ids derived from
the key, the request's bytes and the row index (SHAKE-128, 16 bytes per row, in hex), so that a
client that retries a call whose answer it never received logs the same ids again, and the offline
predictions table (one row per id) keeps one row per prediction. The request's bytes are in the
hash so that a key reused for another request gets other ids instead of rows the table would drop
as already there. Without the key the ids are random, as uuid4.

Errors: an unknown model, alias or version is NOT_FOUND; MLflow out of reach UNAVAILABLE; a version
that cannot be served (no signature, a feature this store does not define, an output that is not
one number per row) FAILED_PRECONDITION naming it; a model that raises INTERNAL, with its message.
A score is the model's output as it is: NaN or infinity when the model says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import time
from collections.abc import AsyncIterator
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

import grpc
import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client import Histogram

from featurestore._proto.v1 import prediction_service_pb2
from featurestore._proto.v1 import prediction_service_pb2_grpc
from featurestore._proto.v1 import types_pb2
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.events import PredictionLog
from featurestore.events import to_micros
from featurestore.online import EntityKey
from featurestore.online import FeatureCatalog
from featurestore.online import FeatureRef
from featurestore.online import FeatureStatus
from featurestore.online import FeatureValue
from featurestore.online import FeatureViewSpec
from featurestore.online import OnlineStore
from featurestore.online import ValueType
from featurestore.online.rows import RowBatch
from featurestore.prediction_log.encoding import split_ids
from featurestore.service.convert import STATUS_TO_PROTO
from featurestore.service.convert import check_entity_kinds
from featurestore.service.convert import decode_request
from featurestore.service.convert import entities_from_proto
from featurestore.service.convert import join_key_types
from featurestore.service.convert import value_to_proto
from featurestore.service.models import CHAMPION
from featurestore.service.models import LoadedModel
from featurestore.service.models import ServedModels
from featurestore.service.predict_read import ModelPlan
from featurestore.service.predict_read import ModelRows
from featurestore.service.predict_read import PredictReader
from featurestore.service.predict_response import encode_names
from featurestore.service.predict_response import encode_predict_response
from featurestore.service.prediction_log_process import PredictionLogProcess
from featurestore.service.prediction_stream import PredictionSubscriptions
from featurestore.service.prediction_stream import prediction_filter_from_proto
from featurestore.service.prediction_stream import prediction_to_proto
from featurestore.service.scored_rows import ScoredRows
from featurestore.service.sequence_history import SequenceStates
from featurestore.service.telemetry import LATENCY_BUCKETS
from featurestore.service.topic_stream import start_from_request

__all__ = [
    "IDEMPOTENCY_KEY",
    "PREDICTION_SERVICE",
    "PredictionServicer",
    "inline_features_from_proto",
    "prediction_method_handlers",
]

PREDICTION_SERVICE = "featurestore.v1.PredictionService"
IDEMPOTENCY_KEY = "idempotency-key"
"""The metadata key of a Predict call's idempotency key (gRPC metadata keys are lowercase)."""
_MAX_KEY_LENGTH = 255
_KEY_DOMAIN = b"featurestore.v1.Predict\0"
"""Prefixed to the key before hashing: these ids are not the hash of the key alone."""
_MAX_REQUESTS = 4096
_MAX_REQUEST_ROWS = 65_536
"""Kept requests hold their last rows, scores and response bytes: bounded by entities too."""
_MAX_VERSION = 2**31 - 1
"""MLflow numbers versions from 1 in an INTEGER column; past it, it answers HTTP 500."""
_INLINE_ROWS = 256
"""Up to this many entities the model is called on the event loop: a thread hop costs more."""
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Request:
    """A checked PredictRequest; kept by its bytes, so a repeated request is not parsed again."""

    model_name: str
    alias: str | None
    version: str | None
    entities: tuple[EntityKey, ...]
    message: prediction_service_pb2.PredictRequest
    batches: dict[ModelPlan, RowBatch]
    """The prepared reads of these entities, per model plan."""
    rows: dict[ModelPlan, ModelRows]
    """The last rows read per plan (given back by the next read while unchanged)."""
    scored: dict[tuple[str, str], ScoredRows]
    """The last scores per model version (reused while their rows are the read's)."""
    kinds_checked: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    """The model versions whose views' join key types the entities were checked against."""


def _id_seed(key: str | None, request: bytes) -> bytes | None:
    """What a keyed call's ids are derived from: the key and the request's bytes (None: no key)."""
    if key is None:
        return None
    return _KEY_DOMAIN + key.encode() + b"\0" + request


def _id_text(count: int, seed: bytes | None = None) -> str:
    """``count`` 32-hex-digit ids, joined: random, or the same for every call with ``seed``.

    Random: uuid4's randomness, from one system call. With a seed (:func:`_id_seed`), row ``i``'s
    id is bytes ``16 i`` to ``16 i + 16`` of the SHAKE-128 stream of the seed (one hash per call).
    """
    if seed is None:
        return os.urandom(16 * count).hex()
    return hashlib.shake_128(seed).hexdigest(16 * count)


def _request_ids(count: int, seed: bytes | None = None) -> list[str]:
    """``count`` 32-hex-digit ids (see :func:`_id_text`)."""
    return split_ids(_id_text(count, seed))


def idempotency_key(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The call's idempotency key (None: not sent); ValidationError naming what is wrong."""
    for name, value in metadata or ():
        if name == IDEMPOTENCY_KEY:
            return _checked_key(value)
    return None


def _checked_key(value: str | bytes) -> str:
    where = f"metadata {IDEMPOTENCY_KEY}"
    if isinstance(value, bytes):  # gRPC gives bytes for "-bin" keys only; checked as text anyway
        value = value.decode("latin-1")
    if not value:
        raise ValidationError(f"{where}: must not be empty", field=IDEMPOTENCY_KEY)
    if len(value) > _MAX_KEY_LENGTH:
        raise ValidationError(
            f"{where}: at most {_MAX_KEY_LENGTH} characters, got {len(value)}",
            field=IDEMPOTENCY_KEY,
        )
    if not (value.isascii() and value.isprintable()):
        at = next(i for i, c in enumerate(value) if not (" " <= c <= "~"))
        raise ValidationError(
            f"{where}: printable ASCII only, got {value[at]!r} at character {at}",
            field=IDEMPOTENCY_KEY,
        )
    return value


def _unkept(rows: ModelRows) -> ModelRows:
    """A copy of ``rows`` that no later read gives back (scores derived from it are not reused)."""
    return dataclasses.replace(rows, fresh_until=-math.inf)


def inline_features_from_proto(
    inline: Mapping[str, types_pb2.ValueList], rows: int, model: LoadedModel
) -> dict[FeatureRef, tuple[FeatureValue, ...]]:
    """Inline feature columns, checked against the model's features and the number of rows."""
    columns: dict[FeatureRef, tuple[FeatureValue, ...]] = {}
    for name in sorted(inline):
        where = f"inline_features[{name}]"
        ref = FeatureRef.parse(name, field_name=where)
        if ref not in model.refs:
            raise ValidationError(
                f"{where}: model {model.name} version {model.version} does not use this feature",
                field=where,
            )
        values = inline[name].values
        if len(values) != rows:
            raise ValidationError(
                f"{where}: {len(values)} values for {rows} entity rows", field=where
            )
        columns[ref] = tuple(_inline_value(v, f"{where}.values[{i}]") for i, v in enumerate(values))
    return columns


def _version_number(version: str) -> str:
    """A registry version number as MLflow writes it ("007" is version "7")."""
    if not (version.isascii() and version.isdigit()) or not 1 <= int(version) <= _MAX_VERSION:
        shown = version if len(version) <= 20 else f"{version[:20]}…"
        raise ValidationError(
            f"version: {shown!r} is not a registry version number (1 to {_MAX_VERSION})",
            field="version",
        )
    return str(int(version))


def _inline_value(value: types_pb2.Value, where: str) -> FeatureValue:
    kind = value.WhichOneof("kind")
    if kind is None:
        return FeatureValue(None, FeatureStatus.NULL_VALUE, None)
    if kind in ("double_value", "float_value", "int64_value", "int32_value", "bool_value"):
        number = float(getattr(value, kind))
        if math.isnan(number):
            return FeatureValue(None, FeatureStatus.NULL_VALUE, None)
        if math.isinf(number):  # as ingestion refuses it: no stored feature is infinite either
            raise ValidationError(
                f"{where}: features are finite numbers (or NaN for a missing one), got {number}",
                field=where,
            )
        return FeatureValue(number, FeatureStatus.PRESENT, None)
    raise ValidationError(f"{where}: features are numbers, got {kind}", field=where)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict: validate, resolve the model, read features in one round trip, score, log.

    StreamPredictions: validate, check the model exists, subscribe to the prediction log
    (:mod:`.prediction_stream`), convert.
    """

    def __init__(
        self,
        store: OnlineStore,
        registry: ServedModels,
        log: PredictionLogProcess | None,
        *,
        max_entities: int,
        metrics: CollectorRegistry | None = None,
        subscriptions: PredictionSubscriptions | None = None,
        reader: PredictReader | None = None,
        histories: SequenceStates | None = None,
        catalog: FeatureCatalog | None = None,
    ) -> None:
        """Serve Predict (and StreamPredictions when ``subscriptions`` is given).

        ``metrics``: where the Predict latency histogram goes (None: not recorded);
        ``subscriptions``: the prediction log's, for StreamPredictions (None: UNIMPLEMENTED);
        ``reader``: the online store's row path (None: every call takes the general path);
        ``histories``: sequence models' offline history (None: they cannot be served);
        ``catalog``: the views' join key types, which a request's entity values must have, as in
        GetOnlineFeatures (None: not checked, a value is keyed by its own kind).
        """
        self._store = store
        self._reader = reader
        self._catalog = catalog
        self._key_types: dict[tuple[str, str], Mapping[str, ValueType]] = {}
        self._histories = histories
        self._names: dict[tuple[str, str], bytes] = {}
        self._features_of: dict[tuple[str, str], tuple[str, ...]] = {}
        self._requests: dict[bytes, _Request] = {}
        self._request_rows = 0
        self._subscriptions = subscriptions
        self._registry = registry
        self._log = log
        self._max_entities = max_entities
        self._latency = (
            None
            if metrics is None
            else Histogram(
                "featurestore_predict_duration_seconds",
                "Time of a successful Predict, from its request to its response, by model",
                ["model", "version"],
                buckets=LATENCY_BUCKETS,
                registry=metrics,
            )
        )

    async def Predict(  # noqa: N802  (the generated base class names it)
        self, data: bytes, context: grpc.aio.ServicerContext
    ) -> bytes:
        """Score the entities with the model; the serialized PredictResponse."""
        began = time.perf_counter()
        received = datetime.now(UTC)
        idempotency = _id_seed(idempotency_key(context.invocation_metadata()), data)
        request = self._requests.get(data) or self._parse(data)
        async with asyncio.timeout(context.time_remaining()):
            model = await self._registry.get(
                request.model_name, alias=request.alias, version=request.version
            )
            self._check_kinds(model, request)
            plan = self._plan(model, request)
            if plan is None:
                answer = await self._general(model, request, received, idempotency)
            else:
                answer = await self._fast(model, plan, request, received, idempotency)
        if self._latency is not None:
            self._latency.labels(model.name, model.version).observe(time.perf_counter() - began)
        return answer

    def _parse(self, data: bytes) -> _Request:
        """The checked request (kept by its bytes when it has no inline features)."""
        message = decode_request(prediction_service_pb2.PredictRequest.FromString, data)
        if not message.model_name:
            raise ValidationError("model_name: must not be empty", field="model_name")
        selector = message.WhichOneof("model_selector")
        alias = message.alias if selector == "alias" else None
        version = message.version if selector == "version" else None
        if selector is None:
            alias = CHAMPION
        if alias is not None and not alias:
            raise ValidationError("alias: must not be empty", field="alias")
        if version is not None:
            version = _version_number(version)
        entities = entities_from_proto(message.entities, max_rows=self._max_entities)
        request = _Request(message.model_name, alias, version, entities, message, {}, {}, {})
        if not message.inline_features:
            kept = self._requests
            self._request_rows += len(entities)
            while kept and (len(kept) >= _MAX_REQUESTS or self._request_rows > _MAX_REQUEST_ROWS):
                self._request_rows -= len(kept.pop(next(iter(kept))).entities)
            kept[data] = request
        return request

    def _check_kinds(self, model: LoadedModel, request: _Request) -> None:
        """Refuse entity values of a kind the model's views' join keys do not take (once each)."""
        if self._catalog is None:
            return
        version = (model.name, model.version)
        if version in request.kinds_checked:
            return
        key_types = self._key_types.get(version)
        if key_types is None:
            views: list[FeatureViewSpec] = []
            for name in dict.fromkeys(ref.view for ref in model.refs):
                with contextlib.suppress(NotFoundError):  # refused when read, naming the model
                    views.append(self._catalog.view(name))
            key_types = self._key_types[version] = join_key_types(views)
        check_entity_kinds(request.message.entities, key_types)
        request.kinds_checked.add(version)

    def _plan(self, model: LoadedModel, request: _Request) -> ModelPlan | None:
        """The fast path's plan, or None for the general path."""
        inline = request.message.inline_features
        if model.sequence is not None and inline:
            raise ValidationError(
                f"inline_features: model {model.name} scores sequences of stored rows; "
                "it takes no inline features",
                field="inline_features",
            )
        plan = None
        if self._reader is not None and not inline:
            with _defined_features(model):
                plan = self._reader.plan(model.refs)
            if plan is not None and plan.join_keys != request.entities[0].join_keys:
                plan = None
        if plan is None and model.sequence is not None:
            raise ConfigurationError(
                f"model {model.name} scores sequences of stored rows: it is served from the "
                "Redis online store, its views keyed by the request's join keys"
            )
        return plan

    async def _fast(
        self,
        model: LoadedModel,
        plan: ModelPlan,
        request: _Request,
        received: datetime,
        idempotency: bytes | None,
    ) -> bytes:
        assert self._reader is not None
        entities = request.entities
        batch = request.batches.get(plan)
        if batch is None:
            batch = request.batches[plan] = self._reader.batch(plan, entities)
        rows = await self._reader.read(plan, batch, request.rows.get(plan))
        request.rows[plan] = rows
        key = (model.name, model.version)
        scored = request.scored.get(key)
        if scored is None or scored.rows is not rows:
            scored = await self._score(model, plan, entities, rows)
            request.scored[key] = scored
        text = _id_text(len(entities), idempotency)
        answer = encode_predict_response(model.name, model.version, scored.tails, text.encode())
        if self._log is not None and entities:
            asyncio.get_running_loop().call_soon(
                self._log_rows, model, entities, scored, text, received, time.time_ns() // 1000
            )
        return answer

    async def _score(
        self, model: LoadedModel, plan: ModelPlan, entities: tuple[EntityKey, ...], rows: ModelRows
    ) -> ScoredRows:
        """The model's scores of ``rows``, kept with them unless a sequence was incomplete."""
        complete = True
        if model.sequence is not None:
            scores, complete = await self._sequence_scores(model, plan, entities, rows)
        elif len(entities) <= _INLINE_ROWS:
            scores = model.score(rows.matrix)
        else:
            scores = await asyncio.to_thread(model.score, rows.matrix)
        names = self._names.get((model.name, model.version))
        if names is None:
            names = self._names[(model.name, model.version)] = encode_names(
                [str(r) for r in model.refs]
            )
        # An entity whose history was incomplete may have it on the next call: not kept.
        return ScoredRows(rows if complete else _unkept(rows), scores, names)

    async def _sequence_scores(
        self,
        model: LoadedModel,
        plan: ModelPlan,
        entities: tuple[EntityKey, ...],
        rows: ModelRows,
    ) -> tuple[np.ndarray, bool]:
        """The scores, and whether every entity had its whole history."""
        sequence = model.sequence
        assert sequence is not None
        if self._histories is None:
            raise ConfigurationError(
                f"model {model.name} scores sequences; this server has no offline store for them"
            )
        view = plan.view(sequence.sample_view)
        if view is None:
            raise ConfigurationError(
                f"model {model.name} version {model.version} scores sequences of "
                f"{sequence.sample_view} rows but reads none of its features"
            )
        state, full = await self._histories.states(model, entities, rows.stamps[view])
        scores = np.full(len(entities), np.nan)
        if full.any():
            scores = model.score_step(rows.matrix, state)
            scores[~full] = np.nan
        return scores, bool(full.all())

    def _log_rows(
        self,
        model: LoadedModel,
        entities: tuple[EntityKey, ...],
        scored: ScoredRows,
        request_ids: str,
        received: datetime,
        answered: int,
    ) -> None:
        """Log the fast path's predictions (a callback: runs after the response is written)."""
        assert self._log is not None
        try:
            features = self._features_of.get((model.name, model.version))
            if features is None:
                features = self._features_of[(model.name, model.version)] = tuple(
                    map(str, model.refs)
                )
            self._log.log_call(
                model.name,
                model.version,
                features,
                entities,
                scored,
                request_ids,
                to_micros(received),
                answered,
            )
        except Exception:  # the answer is sent; say why its log is missing
            logger.exception(
                "prediction log: %d predictions of %s not logged", len(entities), model.name
            )

    async def _general(
        self, model: LoadedModel, request: _Request, received: datetime, idempotency: bytes | None
    ) -> bytes:
        entities = request.entities
        inline = inline_features_from_proto(request.message.inline_features, len(entities), model)
        columns = await self._features(entities, model, inline)
        matrix = _matrix(columns)
        scores = await asyncio.to_thread(model.score, matrix)
        response = _response(
            model, entities, columns, scores, _request_ids(len(entities), idempotency)
        )
        if self._log is not None:
            self._log.log(_log_events(model, entities, columns, response, received))
        return response.SerializeToString()

    async def StreamPredictions(  # noqa: N802  (the generated base class names it)
        self,
        request: prediction_service_pb2.StreamPredictionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[prediction_service_pb2.StreamPredictionsResponse]:
        """The model's logged predictions of the wanted entities, from where the request says."""
        if self._subscriptions is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "this server does not stream predictions"
            )
            return
        wanted = prediction_filter_from_proto(request, max_entities=self._max_entities)
        start = start_from_request(request, self._subscriptions)
        # An unknown model is NOT_FOUND at once rather than a stream that never says anything.
        await self._registry.check_model(wanted.model_name)
        async for item in self._subscriptions.subscribe(start, wanted.accepts):
            response = prediction_service_pb2.StreamPredictionsResponse(
                resume_token=item.resume_token
            )
            if item.event is not None:
                response.prediction.CopyFrom(prediction_to_proto(item.event))
            yield response

    async def _features(
        self,
        entities: Sequence[EntityKey],
        model: LoadedModel,
        inline: Mapping[FeatureRef, tuple[FeatureValue, ...]],
    ) -> list[tuple[FeatureValue, ...]]:
        to_read = [ref for ref in model.refs if ref not in inline]
        read = {}
        if to_read:
            with _defined_features(model):
                online = await self._store.read(entities, to_read)
            read = dict(zip(online.refs, online.columns, strict=True))
        return [inline[ref] if ref in inline else read[ref] for ref in model.refs]


@contextmanager
def _defined_features(model: LoadedModel) -> Iterator[None]:
    """A feature of the model that the store does not define: the model cannot be served here.

    FAILED_PRECONDITION naming the model, not NOT_FOUND: the model the caller named exists.
    """
    try:
        yield
    except NotFoundError as exc:
        raise ConfigurationError(
            f"model {model.name} version {model.version} reads features this store does not "
            f"serve: {exc}"
        ) from exc


def _matrix(columns: Sequence[tuple[FeatureValue, ...]]) -> np.ndarray:
    rows = len(columns[0]) if columns else 0
    matrix = np.full((rows, len(columns)), np.nan)
    for j, column in enumerate(columns):
        for i, value in enumerate(column):
            if value.status is FeatureStatus.PRESENT and isinstance(value.value, int | float):
                matrix[i, j] = value.value
    return matrix


def _response(
    model: LoadedModel,
    entities: Sequence[EntityKey],
    columns: Sequence[tuple[FeatureValue, ...]],
    scores: np.ndarray,
    request_ids: Sequence[str] | None = None,
) -> prediction_service_pb2.PredictResponse:
    """The PredictResponse; ``request_ids`` one per entity (None: random ones)."""
    names = [str(ref) for ref in model.refs]
    response = prediction_service_pb2.PredictResponse(
        model_name=model.name, model_version=model.version
    )
    ids = _request_ids(len(entities)) if request_ids is None else request_ids
    for row, request_id in enumerate(ids):
        used = [column[row] for column in columns]
        prediction = response.predictions.add(
            request_id=request_id, score=float(scores[row]), feature_names=names
        )
        prediction.feature_values.extend(
            value_to_proto(v.value if v.status is FeatureStatus.PRESENT else None) for v in used
        )
        prediction.feature_statuses.extend(STATUS_TO_PROTO[v.status] for v in used)
        newest = _newest(used)
        if newest is not None:
            prediction.feature_time.FromDatetime(newest)
    return response


def _newest(values: Sequence[FeatureValue]) -> datetime | None:
    times = [v.event_time for v in values if v.event_time is not None]
    return max(times) if times else None


def _log_events(
    model: LoadedModel,
    entities: Sequence[EntityKey],
    columns: Sequence[tuple[FeatureValue, ...]],
    response: prediction_service_pb2.PredictResponse,
    received: datetime,
) -> list[PredictionLog]:
    answered = datetime.now(UTC)
    names = [str(ref) for ref in model.refs]
    events = []
    for row, (entity, prediction) in enumerate(zip(entities, response.predictions, strict=True)):
        used = [column[row] for column in columns]
        features: dict[str, float | None] = {
            name: float(v.value)
            if v.status is FeatureStatus.PRESENT and isinstance(v.value, int | float)
            else None
            for name, v in zip(names, used, strict=True)
        }
        events.append(
            PredictionLog(
                request_id=prediction.request_id,
                model_name=model.name,
                model_version=model.version,
                entity={k: str(v) for k, v in zip(entity.join_keys, entity.values, strict=True)},
                prediction=prediction.score,
                request_time=received,
                response_time=answered,
                features=features,
                feature_time=_newest(used),
            )
        )
    return events


def prediction_method_handlers(servicer: PredictionServicer) -> dict[str, grpc.RpcMethodHandler]:
    """The service's handlers: Predict takes and answers bytes (it parses and writes them)."""
    return {
        # Bytes in (decoded, and kept by their bytes, in Predict) and bytes out.
        "Predict": grpc.unary_unary_rpc_method_handler(servicer.Predict),
        "StreamPredictions": grpc.unary_stream_rpc_method_handler(
            servicer.StreamPredictions,
            request_deserializer=prediction_service_pb2.StreamPredictionsRequest.FromString,
            response_serializer=prediction_service_pb2.StreamPredictionsResponse.SerializeToString,
        ),
    }
