"""The SDK refuses arguments it would send wrong, before any call, naming the argument."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from featurestore_client import FeatureStoreClient
from featurestore_client._anomalies import anomaly_request
from featurestore_client._convert import online_request
from featurestore_client._datasets import export_request
from featurestore_client._predict import predict_request
from featurestore_client._prediction_stream import prediction_stream_request

T = datetime(2026, 12, 6, tzinfo=UTC)
NOWHERE = "127.0.0.1:9"
"""A target nothing answers on: a refusal that reached gRPC would be UNAVAILABLE instead."""


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: online_request(["bars_1m:close"], None, {"symbol": "AAPL"}), "entities['symbol']"),
        (lambda: online_request("bars_1m:close", None, {"symbol": ["AAPL"]}), "features"),
        (lambda: anomaly_request("IBM", None, None, None), "symbols"),
        (
            lambda: export_request("bars_1m:close", None, None, None, None, 0, False),
            "features",
        ),
        (
            lambda: export_request(
                ["bars_1m:close"],
                None,
                None,
                ("IBM", T, T + timedelta(1), timedelta(1)),
                None,
                0,
                False,
            ),
            "symbols",
        ),
        (lambda: predict_request("m", None, None, {"symbol": "IBM"}, None), "entities['symbol']"),
        (
            lambda: predict_request("m", None, None, {"symbol": ["IBM"]}, {"x": b"12"}),
            "inline_features['x']",
        ),
        (
            lambda: prediction_stream_request("m", {"symbol": "IBM"}, None, None),
            "entities['symbol']",
        ),
    ],
)
def test_one_string_where_a_list_goes_is_refused(build: Callable[[], object], named: str) -> None:
    # Iterated, "AAPL" would be four values: A, A, P and L.
    with pytest.raises(TypeError, match="^" + re.escape(f"{named} must be a list, not one")):
        build()


@pytest.mark.parametrize("token", ["abc\n", "tökén", "a\x00b", " abc", "abc "])
def test_a_token_grpc_cannot_send_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(ValueError, match=r"^token: gRPC sends only printable ASCII") as info:
        FeatureStoreClient(NOWHERE, token=token)
    assert token.strip() not in str(info.value)


def test_a_token_with_inner_spaces_and_symbols_is_kept() -> None:
    FeatureStoreClient(NOWHERE, token="a b~!#$%&'*+-.^_`|").close()


@pytest.mark.parametrize("timeout_s", [0, -1, float("nan")])
def test_a_timeout_that_is_not_positive_is_refused(timeout_s: float) -> None:
    with pytest.raises(ValueError, match=r"^timeout_s must be positive \(None waits forever\)"):
        FeatureStoreClient(NOWHERE, timeout_s=timeout_s)
    with (
        FeatureStoreClient(NOWHERE) as client,
        pytest.raises(ValueError, match=r"^timeout_s must be positive"),
    ):
        client.get_online_features(
            ["bars_1m:close"], entities={"symbol": ["A"]}, timeout_s=timeout_s
        )


@pytest.mark.parametrize(
    ("value", "kind"), [("150", "str"), (True, "bool"), (b"1", "bytes"), ([1.0], "list")]
)
def test_an_inline_feature_that_is_not_a_number_is_refused_naming_its_row(
    value: object, kind: str
) -> None:
    # "150" was sent as 150.0 and True as 1.0; "abc" failed without naming the feature.
    with pytest.raises(
        TypeError, match="^" + re.escape(f"inline_features['v:f'][1]: a {kind} is not a number")
    ):
        predict_request("m", None, None, {"symbol": ["A", "B"]}, {"v:f": [1.0, value]})  # type: ignore[list-item]


def test_inline_features_take_python_and_numpy_numbers_and_none() -> None:
    import numpy as np

    request = predict_request(
        "m", None, None, {"symbol": ["A"] * 4}, {"v:f": [1, 2.5, np.float32(0.5), None]}
    )
    values = request.inline_features["v:f"].values
    assert [v.double_value for v in values[:3]] == [1.0, 2.5, 0.5]
    assert values[3].WhichOneof("kind") is None
