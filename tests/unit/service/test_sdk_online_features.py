"""The SDK's online answer (OnlineFeatures) and its request bytes, without a server.

The answer is decoded from bytes protobuf serialized, as the client decodes the server's; its
views (NumPy, Arrow, pandas, dicts, rows) must agree with each other and keep the statuses.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from featurestore_client import EntityRow
from featurestore_client import FeatureStatus
from featurestore_client import FeatureValue
from featurestore_client import OnlineFeatures
from featurestore_client._convert import online_features
from featurestore_client._convert import online_request
from featurestore_client._proto.v1 import feature_service_pb2

T0 = datetime(2026, 12, 2, 12, 0, 0, 250_000, tzinfo=UTC)


def _answer() -> OnlineFeatures:
    """IBM present, AIG's row stale with a null volume, XYZ not found."""
    message = feature_service_pb2.GetOnlineFeaturesResponse(
        feature_names=["bars_1m:close", "bars_1m:volume", "bars_1m:trade_count"]
    )
    rows: dict[str, list[tuple[str | None, float | None, int]]] = {
        "bars_1m:close": [("double_value", 151.25, 1), ("double_value", 30.5, 4), (None, None, 3)],
        "bars_1m:volume": [("double_value", 9.0, 1), (None, None, 2), (None, None, 3)],
        "bars_1m:trade_count": [("int64_value", 7, 1), ("int64_value", 3, 4), (None, None, 3)],
    }
    for name in message.feature_names:
        column = message.columns.add()
        for i, (kind, value, status) in enumerate(rows[name]):
            wire = column.values.add()
            if kind is not None:
                setattr(wire, kind, value)
            column.statuses.append(status)  # type: ignore[arg-type]  # the enum by number
            stamp = column.event_timestamps.add()
            if status != 3:
                stamp.FromDatetime(T0.replace(minute=i))
    return online_features(message.SerializeToString(), {"symbol": ["IBM", "AIG", "XYZ"]})


def test_columns_are_arrays_with_statuses_and_times() -> None:
    answer = _answer()
    close = answer.columns["bars_1m:close"]
    assert close.values.dtype == np.float64 and close.values[0] == 151.25
    assert np.isnan(close.values[2]) and list(close.is_set) == [True, True, False]
    assert [FeatureStatus.of_code(int(c)) for c in close.statuses] == [
        FeatureStatus.PRESENT,
        FeatureStatus.OUTSIDE_MAX_AGE,
        FeatureStatus.NOT_FOUND,
    ]
    assert close.event_times[1] == np.datetime64("2026-12-02T12:01:00.250000")
    assert np.isnat(close.event_times[2])
    assert answer.columns["bars_1m:trade_count"].values.dtype == np.int64
    assert answer.feature_names == ["bars_1m:close", "bars_1m:volume", "bars_1m:trade_count"]
    with pytest.raises(ValueError, match="read-only"):
        close.values[0] = 1.0


def test_rows_and_feature_values() -> None:
    answer = _answer()
    ibm, aig, xyz = answer
    assert isinstance(ibm, EntityRow) and ibm.keys == {"symbol": "IBM"}
    assert ibm["bars_1m:close"] == 151.25 and isinstance(ibm["bars_1m:trade_count"], int)
    assert aig.features["bars_1m:volume"] == FeatureValue(
        None, FeatureStatus.NULL_VALUE, T0.replace(minute=1)
    )
    assert xyz.features["bars_1m:close"] == FeatureValue(None, FeatureStatus.NOT_FOUND, None)
    assert answer.row(-1) == xyz
    close = answer.features["bars_1m:close"]
    assert len(close) == 3 and close[0].event_time == T0 and close[-1].value is None
    assert [v.status for v in close[1:]] == [FeatureStatus.OUTSIDE_MAX_AGE, FeatureStatus.NOT_FOUND]


def test_its_repr_shows_the_first_rows_with_their_statuses() -> None:
    assert repr(_answer()) == (
        "OnlineFeatures(3 entities x 3 features)\n"
        "  symbol='IBM': bars_1m:close=151.25, bars_1m:volume=9.0, bars_1m:trade_count=7\n"
        "  symbol='AIG': bars_1m:close=30.5 (OUTSIDE_MAX_AGE), bars_1m:volume=NULL_VALUE,"
        " bars_1m:trade_count=3 (OUTSIDE_MAX_AGE)\n"
        "  symbol='XYZ': bars_1m:close=NOT_FOUND, bars_1m:volume=NOT_FOUND,"
        " bars_1m:trade_count=NOT_FOUND"
    )
    many = online_features(
        feature_service_pb2.GetOnlineFeaturesResponse().SerializeToString(),
        {"symbol": [f"S{i}" for i in range(7)]},
    )
    assert repr(many).splitlines() == [
        "OnlineFeatures(7 entities x 0 features)",
        *(f"  symbol='S{i}': " for i in range(5)),
        "  ... 2 more entities",
    ]


def test_dicts_numpy_arrow_and_pandas_agree() -> None:
    answer = _answer()
    assert answer.to_dicts() == [
        {"symbol": "IBM", "bars_1m:close": 151.25, "bars_1m:volume": 9.0, "bars_1m:trade_count": 7},
        {"symbol": "AIG", "bars_1m:close": 30.5, "bars_1m:volume": None, "bars_1m:trade_count": 3},
        {"symbol": "XYZ", "bars_1m:close": None, "bars_1m:volume": None,
         "bars_1m:trade_count": None},
    ]  # fmt: skip
    with_status = answer.to_dicts(with_status=True)[1]
    assert with_status["bars_1m:volume__status"] is FeatureStatus.NULL_VALUE
    assert with_status["bars_1m:close__event_time"] == T0.replace(minute=1)

    matrix = answer.to_numpy()
    assert matrix.shape == (3, 3) and matrix[0, 2] == 7.0 and np.isnan(matrix[2]).all()

    table = answer.to_arrow(with_status=True)
    assert table.column("bars_1m:trade_count").type == pa.int64()
    assert table.column("bars_1m:trade_count").to_pylist() == [7, 3, None]
    assert table.column("bars_1m:volume__status").to_pylist() == [
        "present",
        "null_value",
        "not_found",
    ]
    assert table.column("bars_1m:close__event_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("bars_1m:close__event_time").to_pylist()[1:] == [
        T0.replace(minute=1),
        None,
    ]

    frame = answer.to_dataframe(with_status=True)
    assert frame["bars_1m:close"].dtype == np.float64
    assert str(frame["bars_1m:trade_count"].dtype) == "Int64"
    assert frame.loc[2, "bars_1m:trade_count"] is pd.NA
    assert frame.loc[1, "bars_1m:close__status"] is FeatureStatus.OUTSIDE_MAX_AGE
    assert frame.loc[0, "bars_1m:close__event_time"] == pd.Timestamp(T0)
    assert pd.isna(frame.loc[2, "bars_1m:close__event_time"])
    assert list(frame["symbol"]) == ["IBM", "AIG", "XYZ"]


@pytest.mark.parametrize(
    ("features", "service", "entities"),
    [
        (["bars_1m:close", "rolling_1m:vwap_5m"], None, {"symbol": ["IBM", "AIG", "é" * 70]}),
        (None, "market_features_v1", {"account": [0, 1, -1, 2**63 - 1, -(2**63)]}),
        (["bars_1m:close"], None, {"symbol": ["A"], "venue": [1.5, True, None]}),
        ([], None, {"symbol": []}),
    ],
)
def test_request_bytes_are_protobufs(
    features: list[str] | None, service: str | None, entities: dict[str, list[object]]
) -> None:
    expected = feature_service_pb2.GetOnlineFeaturesRequest()
    if service is not None:
        expected.feature_service = service
    else:
        expected.features.SetInParent()
        expected.features.features.extend(features or ())
    for key, values in entities.items():
        column = expected.entities[key]
        for value in values:
            wire = column.values.add()
            if isinstance(value, str):
                wire.string_value = value
            elif isinstance(value, int) and not isinstance(value, bool):
                wire.int64_value = value
    got = online_request(features, service, entities)  # type: ignore[arg-type]
    assert feature_service_pb2.GetOnlineFeaturesRequest.FromString(got) == expected


def test_an_integer_outside_int64_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"entities\[account\]\[1\]: 9223372036854775808"):
        online_request(["bars_1m:close"], None, {"account": [1, 2**63]})
