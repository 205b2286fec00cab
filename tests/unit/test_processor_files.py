"""A processor's files: one layout, used by the processor, the stack and ``processors status``."""

from __future__ import annotations

from pathlib import Path

from featurestore.config import load_settings
from featurestore.processor_files import processor_dir
from featurestore.processor_files import processor_log
from featurestore.processor_files import ready_file
from featurestore.processor_files import status_file
from processors.options import ProcessorOptions


def test_a_processors_files_sit_in_its_folder_and_its_log_beside_it(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    home = tmp_path.resolve() / "processors" / "features-quotes"
    assert processor_dir(settings, "features-quotes") == home
    assert ready_file(settings, "features-quotes") == home / "ready.json"
    assert status_file(settings, "features-quotes") == home / "status.json"
    assert processor_log(settings, "features-quotes") == home.parent / "features-quotes.log"


def test_each_application_splitting_a_topic_has_its_own_status_file(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    whole = ProcessorOptions(name="f")
    split = ProcessorOptions(name="f", partitions=(2, 0))
    assert whole.status_path(settings) == status_file(settings, "f")
    assert split.status_path(settings) == processor_dir(settings, "f") / "status-f-p0-2.json"
