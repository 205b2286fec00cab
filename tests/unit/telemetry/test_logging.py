"""Every long-running process logs one way: time, level, logger, message."""

from __future__ import annotations

import re
import subprocess
import sys

SCRIPT = """
import logging
from featurestore.telemetry import log_to_stderr
log_to_stderr()
logging.getLogger("featurestore.monitor").info("lag measured")
logging.getLogger("httpx2").info("HTTP Request: GET http://127.0.0.1/")
logging.getLogger("httpx2").warning("connection reset")
logging.getLogger("featurestore.monitor").debug("not shown")
"""


def test_lines_carry_time_level_and_logger_and_request_lines_are_quiet() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    lines = run.stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert len(lines) == 2, lines
    assert re.fullmatch(rf"{stamp} INFO featurestore\.monitor lag measured", lines[0])
    assert re.fullmatch(rf"{stamp} WARNING httpx2 connection reset", lines[1])
