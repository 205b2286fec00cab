"""Fixtures that run registry processes of our own (``python -m featurestore.schema_registry``).

Each runs on a free port with its own topic (FEATURESTORE_SCHEMA_REGISTRY__PORT and
FEATURESTORE_TOPICS__SCHEMAS), against the stack's Kafka, and is stopped by its own PID only:
the stack's registry on 18081 is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from featurestore.config import Settings
from featurestore.config import settings_env
from tests.ports import free_port


@dataclass
class RegistryProcess:
    """One registry process on its own port and topic; stopped by its own PID only."""

    settings: Settings
    topic: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers its clients send: basic auth when the stack's registry has users."""
        return self.settings.schema_registry.auth_header

    def client_config(self, url: str | None = None, **extra: object) -> dict[str, object]:
        """A Confluent ``SchemaRegistryClient``'s configuration for it (or ``url``)."""
        config: dict[str, object] = {"url": url or self.url, **extra}
        user_info = self.settings.schema_registry.basic_auth_user_info
        if user_info is not None:
            config["basic.auth.user.info"] = user_info.get_secret_value()
        return config

    def start(self, timeout_s: float = 60.0) -> None:
        env = {
            **os.environ,
            **settings_env(self.settings),
            "FEATURESTORE_SCHEMA_REGISTRY__HOST": "127.0.0.1",
            "FEATURESTORE_SCHEMA_REGISTRY__PORT": str(self.port),
            "FEATURESTORE_TOPICS__SCHEMAS": self.topic,
        }
        env.pop("FEATURESTORE_SCHEMA_REGISTRY__URL", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "featurestore.schema_registry"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"registry exited: {self.log_path.read_text()[-3000:]}")
            try:
                headers = self.settings.schema_registry.auth_header
                reply = requests.get(f"{self.url}/subjects", headers=headers, timeout=1)
                if reply.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"registry not healthy: {self.log_path.read_text()[-3000:]}")

    def new_port(self) -> int:
        return free_port()

    def stop(self, *, graceful: bool = True) -> None:
        if self.process is None:
            return
        if not graceful:
            self.process.kill()
            self.process.wait(15)
            self.process = None
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@pytest.fixture
def start_registry(stack: Settings, tmp_path: Path) -> Iterator[Callable[..., RegistryProcess]]:
    """``start_registry(topic, settings=stack)``: a registry on a free port for a topic, with
    ``settings`` (the stack's by default); stops every one it started."""
    started: list[RegistryProcess] = []

    def start(topic: str, settings: Settings | None = None) -> RegistryProcess:
        process = RegistryProcess(settings or stack, topic, free_port(), tmp_path / f"{topic}.log")
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def registry(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryProcess]:
    """One registry process for a test module, on a topic of its own."""
    tmp = tmp_path_factory.mktemp("registry")
    process = RegistryProcess(
        stack, f"_schemas-it-{uuid.uuid4().hex[:8]}", free_port(), tmp / "r.log"
    )
    process.start()
    yield process
    process.stop()
