from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.stack import Stack
from featurestore.stack.kafka import KafkaServer
from featurestore.stack.kafka import java_argument_file
from featurestore.stack.kafka import new_cluster_id


def test_cluster_ids_are_uuids_that_never_read_as_options() -> None:
    ids = [new_cluster_id() for _ in range(5_000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)


def _cluster(tmp_path: Path, brokers: int) -> Stack:
    return Stack(
        load_settings(
            {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_KAFKA__BROKERS": str(brokers)}
        )
    )


def _properties(node: KafkaServer) -> dict[str, str]:
    lines = node._properties().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def test_three_brokers_are_three_supervised_servers_of_their_own(tmp_path: Path) -> None:
    stack = _cluster(tmp_path, 3)
    nodes = stack.kafka_nodes
    assert [n.name for n in nodes] == ["kafka", "kafka-2", "kafka-3"]
    assert stack.kafka is nodes[0]
    assert all(n in stack.servers for n in nodes)  # started, stopped, supervised with the rest
    assert len({n.data_dir for n in nodes}) == len({n.process.pid_file for n in nodes}) == 3
    assert len({n.marker() for n in nodes}) == 3
    props = [_properties(n) for n in nodes]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert [n.address() for n in nodes] == stack.settings.kafka.bootstrap.split(",")
    voters = "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    assert all(p["controller.quorum.voters"] == voters for p in props)
    assert props[2]["listeners"] == "PLAINTEXT://127.0.0.1:19096,CONTROLLER://127.0.0.1:19097"
    assert props[0]["offsets.topic.replication.factor"] == "3"
    assert props[0]["transaction.state.log.min.isr"] == "2"


def test_one_broker_keeps_the_standalone_quorum(tmp_path: Path) -> None:
    stack = _cluster(tmp_path, 1)
    assert [n.name for n in stack.kafka_nodes] == ["kafka"]
    props = _properties(stack.kafka)
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert "controller.quorum.voters" not in props
    assert props["offsets.topic.replication.factor"] == "1"
    assert stack.kafka.address() == "127.0.0.1:19092"


def test_data_formatted_for_one_broker_is_refused_for_three(tmp_path: Path) -> None:
    single = _cluster(tmp_path, 1).kafka
    (single.data_dir / "data").mkdir(parents=True)
    (single.data_dir / "data" / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(ConfigurationError, match=r"formatted for 1 broker.*BROKERS=3"):
        _cluster(tmp_path, 3).kafka_nodes[1].prepare()
    with pytest.raises(ConfigurationError, match="FEATURESTORE_KAFKA__BROKERS=1"):
        KafkaServer(single.settings, node=2)


def test_a_secured_start_on_open_kafka_data_is_refused_before_any_server_starts(
    tmp_path: Path,
) -> None:
    kafka = Stack(load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})).kafka
    (kafka.data_dir / "data").mkdir(parents=True)
    (kafka.data_dir / "data" / "meta.properties").write_text("node.id=1\n")  # ran open
    secured = Stack(
        load_settings(
            {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_SECURITY__ENABLED": "true"}
        )
    )
    with pytest.raises(ConfigurationError, match="formatted without SCRAM users"):
        secured.up()  # Redis and PostgreSQL, in the wave before Kafka, were not started
    assert all(c.process.pid() is None for c in secured.servers)
    assert not (tmp_path / "redis").exists() and not (tmp_path / "postgres").exists()


def test_the_scram_password_is_not_on_the_format_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secured = Stack(
        load_settings(
            {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_SECURITY__ENABLED": "true"}
        )
    )
    kafka = secured.kafka
    assert secured.settings.kafka.password is not None
    password = secured.settings.kafka.password.get_secret_value()
    seen: dict[str, object] = {}

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        argument_file = Path(command[-1].removeprefix("@"))
        seen["command"] = command
        seen["mode"] = argument_file.stat().st_mode & 0o777
        seen["text"] = argument_file.read_text()
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(KafkaServer, "_java", lambda self: ["java", "-cp", "jars/*"])
    monkeypatch.setattr(subprocess, "run", run)
    kafka.prepare()
    command = seen["command"]
    assert isinstance(command, list)
    assert not any(password in word for word in command)
    assert command[-1] == f"@{kafka.data_dir / 'format.args'}"
    assert seen["mode"] == 0o600
    assert password in str(seen["text"])
    assert not (kafka.data_dir / "format.args").exists()


def test_an_argument_file_gives_the_java_launcher_each_argument_as_it_is(tmp_path: Path) -> None:
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on this machine (make setup installs it)")
    (tmp_path / "Echo.java").write_text(
        "public class Echo { public static void main(String[] a) {"
        ' for (String s : a) System.out.print(s + "\\u0000"); } }'
    )
    arguments = [
        "Echo",
        "format",
        "SCRAM-SHA-512=[name=u,password=a\"b\\c d'e$f\tg#h]",
        "#not a comment",
        "",
    ]
    (tmp_path / "args").write_text(
        java_argument_file([str(tmp_path / "Echo.java"), *arguments[1:]])
    )
    out = subprocess.run(
        [java, f"@{tmp_path / 'args'}"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.split("\0")[:-1] == arguments[1:]
