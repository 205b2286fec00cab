"""A processor's start on a cluster: a master that is down is named at once, not waited on."""

from __future__ import annotations

import socket
import time

import pytest

from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from processors.options import ProcessorOptions
from processors.spark.executors import check_master
from processors.spark.executors import start_session
from tests.ports import free_port


def test_a_processor_pointed_at_a_master_that_is_down_fails_at_once_naming_it() -> None:
    url = f"spark://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(ConfigurationError, match="does not answer") as caught:
        start_session(load_settings({}), ProcessorOptions(master=url))
    assert url in str(caught.value)
    assert "featurestore cluster up" in str(caught.value)
    assert time.monotonic() - began < 10  # Spark was not started, nothing was waited for


def test_a_master_answering_on_one_of_its_addresses_is_accepted() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen()
        live = server.getsockname()[1]
        check_master(f"spark://127.0.0.1:{free_port()},127.0.0.1:{live}")
        with pytest.raises(ConfigurationError):
            check_master(f"spark://127.0.0.1:{free_port()}")
