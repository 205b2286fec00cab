"""What the settings loader refuses, and how it says so: one message naming the variable.

Ports, URLs, blank values and list entries, names that are no setting, groups given a value, the
data folder, and every line of the ``FEATURESTORE_CONFIG`` file (named by ``FILE:LINE``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.config import NOT_SETTINGS
from featurestore.config import GrpcSettings
from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.errors import ConfigurationError


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_settings(env)
    return str(info.value)


# Ports


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FEATURESTORE_KAFKA__PORT", "-5"),
        ("FEATURESTORE_KAFKA__CONTROLLER_PORT", "0"),
        ("FEATURESTORE_REDIS__PORT", "70000"),
        ("FEATURESTORE_REDIS__BUS_PORT", "65536"),
        ("FEATURESTORE_POSTGRES__PORT", "99999"),
        ("FEATURESTORE_SCHEMA_REGISTRY__PORT", "0"),
        ("FEATURESTORE_MLFLOW__PORT", "-1"),
        ("FEATURESTORE_PROMETHEUS__PORT", "65536"),
        ("FEATURESTORE_DASHBOARD__PORT", "0"),
        ("FEATURESTORE_SPARK_CLUSTER__MASTER_PORT", "0"),
        ("FEATURESTORE_SPARK_CLUSTER__MASTER_UI_PORT", "100000"),
        ("FEATURESTORE_SPARK_CLUSTER__WORKER_UI_PORT", "-2"),
        ("FEATURESTORE_GRPC__PORT", "-1"),
        ("FEATURESTORE_METRICS__GRPC_PORT", "65536"),
    ],
)
def test_a_port_out_of_range_is_refused_naming_the_variable(variable: str, value: str) -> None:
    message = refused({variable: value})
    assert f"{variable}: must be a port number (1-65535)" in message
    assert message.endswith(f"not {value}")


def test_the_message_is_the_one_a_user_reads() -> None:
    assert refused({"FEATURESTORE_KAFKA__PORT": "-5"}).endswith(
        "FEATURESTORE_KAFKA__PORT: must be a port number (1-65535), not -5"
    )


def test_zero_picks_a_free_port_only_where_the_server_reports_the_one_it_got() -> None:
    settings = load_settings(
        {"FEATURESTORE_GRPC__PORT": "0", "FEATURESTORE_METRICS__GRPC_PORT": "0"}
    )
    assert settings.grpc.port == 0 and settings.metrics.grpc_port == 0
    assert GrpcSettings(port=0).port == 0
    assert load_settings({"FEATURESTORE_KAFKA__PORT": "65535"}).kafka.port == 65535


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"FEATURESTORE_KAFKA__BROKERS": "3", "FEATURESTORE_KAFKA__PORT": "65532",
             "FEATURESTORE_KAFKA__CONTROLLER_PORT": "65533"},
            "pass 65535",
        ),
        (
            {"FEATURESTORE_REDIS__CLUSTER": "true", "FEATURESTORE_REDIS__PORT": "65534",
             "FEATURESTORE_REDIS__BUS_PORT": "20000"},
            "pass 65535",
        ),
        (
            {"FEATURESTORE_SPARK_CLUSTER__WORKER_UI_PORT": "65535"},
            "FEATURESTORE_SPARK_CLUSTER__WORKER_UI_PORT=65535",
        ),
    ],
)  # fmt: skip
def test_the_ports_of_the_later_local_nodes_are_checked_too(env: dict[str, str], says: str) -> None:
    assert says in refused(env)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS", "a:9092,b:99999", "entry 2 'b:99999'"),
        ("FEATURESTORE_REDIS__CLUSTER_NODES", "a:6379,b:0", "node 'b:0'"),
    ],
)
def test_a_node_port_out_of_range_is_refused(variable: str, value: str, says: str) -> None:
    message = refused({"FEATURESTORE_REDIS__CLUSTER": "true", variable: value})
    assert f"{variable}: {says}: the port must be 1-65535" in message


# URLs


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FEATURESTORE_SCHEMA_REGISTRY__URL", "not-a-url"),
        ("FEATURESTORE_SCHEMA_REGISTRY__URL", "http://a:8081,registry-b:8081"),
        ("FEATURESTORE_SCHEMA_REGISTRY__URL", "http://a:8081,,http://b:8081"),
        ("FEATURESTORE_SCHEMA_REGISTRY__ADVERTISED_URL", "ftp://registry:8081"),
        ("FEATURESTORE_MLFLOW__TRACKING_URI", "http://"),
        ("FEATURESTORE_MLFLOW__TRACKING_URI", "http://mlflow:99999"),
        ("FEATURESTORE_TRACING__ENDPOINT", "collector:4317"),
        ("FEATURESTORE_VENDOR__REST_URL", "api.massive.com"),
        ("FEATURESTORE_VENDOR__WS_URL", "https://socket.massive.com/stocks"),
    ],
)
def test_a_malformed_url_is_refused_at_load(variable: str, value: str) -> None:
    assert f"{variable}: " in refused({variable: value})


def test_good_urls_load_and_a_list_loses_its_spaces() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SCHEMA_REGISTRY__URL": " http://a:8081 , https://b:8081/ ",
            "FEATURESTORE_SCHEMA_REGISTRY__ADVERTISED_URL": "http://$(POD_NAME).pods:8081",
            "FEATURESTORE_MLFLOW__TRACKING_URI": "https://mlflow.internal",
            "FEATURESTORE_VENDOR__WS_URL": "ws://127.0.0.1:8765/stocks",
        }
    )
    assert settings.schema_registry.url == "http://a:8081,https://b:8081/"
    assert settings.mlflow.tracking_uri == "https://mlflow.internal"


def test_a_url_with_credentials_is_not_shown() -> None:
    message = refused({"FEATURESTORE_MLFLOW__TRACKING_URI": "htp://user:s3cret@mlflow"})
    assert "FEATURESTORE_MLFLOW__TRACKING_URI" in message and "s3cret" not in message


# Empty and blank values


def test_an_empty_value_is_the_default_and_a_blank_one_is_refused() -> None:
    empty = load_settings(
        {"FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": "", "FEATURESTORE_KAFKA__PORT": ""}
    )
    assert empty.kafka.bootstrap == "127.0.0.1:19092"
    for variable in ("FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS", "FEATURESTORE_TOPICS__TRADES"):
        assert f"{variable}: the value is blank" in refused({variable: " "})


@pytest.mark.parametrize("servers", ["host:", ":9092", "a:9092,,b:9092", "a:9092,"])
def test_a_bad_bootstrap_entry_is_refused(servers: str) -> None:
    assert "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS: entry" in refused(
        {"FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": servers}
    )


def test_list_entries_lose_their_spaces() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": " a:9092 , b:9092 ",
            "FEATURESTORE_METRICS__LAG_PROCESSORS": "features , features-quotes",
            "FEATURESTORE_METRICS__DRIFT_MODELS": "",
        }
    )
    assert settings.kafka.bootstrap == "a:9092,b:9092"
    assert settings.metrics.lag_processors == ("features", "features-quotes")
    assert settings.metrics.drift_models == ()
    assert "entry 2" in refused({"FEATURESTORE_METRICS__LAG_PROCESSORS": "a, ,b"})


# Names that are no setting


@pytest.mark.parametrize(
    ("variable", "says"),
    [
        ("FEATURESTORE_KAFKA_PORT", "(did you mean FEATURESTORE_KAFKA__PORT?)"),
        ("FEATURESTORE_REDIS__PASWORD_FILE", "(did you mean FEATURESTORE_REDIS__PASSWORD_FILE?)"),
        ("FEATURESTORE_NOSUCH__X", "is not a setting"),
        ("FEATURESTORE_KAFKA__PORT__X", "(did you mean FEATURESTORE_KAFKA__PORT?)"),
    ],
)
def test_a_variable_that_names_no_setting_is_refused(variable: str, says: str) -> None:
    message = refused({variable: "1"})
    assert message.startswith(f"{variable} is not a setting") and message.endswith(says)


def test_the_variables_other_code_reads_pass(tmp_path: Path) -> None:
    assert "FEATURESTORE_TOKEN" in NOT_SETTINGS and "FEATURESTORE_SHARED_DIR" in NOT_SETTINGS
    load_settings({name: "x" for name in NOT_SETTINGS if name != "FEATURESTORE_CONFIG"})
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    assert load_settings(settings_env(settings)) == settings


def test_a_group_given_a_value_says_how_to_set_its_fields() -> None:
    message = refused({"FEATURESTORE_KAFKA": "1"})
    assert "KafkaSettings" not in message and "dictionary" not in message
    assert "FEATURESTORE_KAFKA__<FIELD>" in message


# The data folder


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    for path in (afile, afile / "below"):
        message = refused({"FEATURESTORE_DATA_DIR": str(path)})
        assert "FEATURESTORE_DATA_DIR" in message and "not a folder" in message
    secured = {"FEATURESTORE_DATA_DIR": str(afile), "FEATURESTORE_SECURITY__ENABLED": "true"}
    assert "not a folder" in refused(secured)
    assert load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path / "new")}).data_dir.name == "new"


# The settings file


def test_the_file_takes_export_and_quotes(tmp_path: Path) -> None:
    config = tmp_path / "featurestore.env"
    config.write_text(
        "# comment\n\nexport FEATURESTORE_KAFKA__PORT=1234\nFEATURESTORE_REDIS__PORT='26379'\n"
        'FEATURESTORE_TOPICS__TRADES = " equity trades"\nFEATURESTORE_POSTGRES__PASSWORD="a b#c"\n'
    )
    settings = load_settings({"FEATURESTORE_CONFIG": str(config)})
    assert (settings.kafka.port, settings.redis.port) == (1234, 26379)
    assert settings.topics.trades == "equity trades"
    assert settings.postgres.password.get_secret_value() == "a b#c"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("[kafka]", "is a TOML table"),
        ("port = 1", "port is not a setting"),
        ("FEATURESTORE_KAFKA__PORT", "not of the form FEATURESTORE_NAME=value"),
        ("FEATURESTORE_KAFKA__PORT='1234", "quote ' is not closed"),
        ("FEATURESTORE KAFKA=1", "is not a variable name"),
        ("FEATURESTORE_TOKEN=abc", "read from the environment, not from this file"),
        ("FEATURESTORE_KAFKA_PORT=1", "(did you mean FEATURESTORE_KAFKA__PORT?)"),
        ("FEATURESTORE_KAFKA__PORT=12 # broker", "FEATURESTORE_KAFKA__PORT: Input should be"),
        ("FEATURESTORE_KAFKA__PORT=-5", "FEATURESTORE_KAFKA__PORT: must be a port number"),
        ("FEATURESTORE_KAFKA__HOST=' '", "FEATURESTORE_KAFKA__HOST: the value is blank"),
    ],
)
def test_every_bad_line_of_the_file_is_named(tmp_path: Path, line: str, says: str) -> None:
    config = tmp_path / "featurestore.env"
    config.write_text(f"FEATURESTORE_REDIS__PORT=26379\n{line}\n")
    message = refused({"FEATURESTORE_CONFIG": str(config)})
    assert f"{config}:2: " in message and says in message


def test_a_value_the_environment_overrides_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    config = tmp_path / "featurestore.env"
    config.write_text("FEATURESTORE_KAFKA__PORT=1234\n")
    message = refused({"FEATURESTORE_CONFIG": str(config), "FEATURESTORE_KAFKA__PORT": "0"})
    assert str(config) not in message and "FEATURESTORE_KAFKA__PORT: must be" in message
