from __future__ import annotations

import logging
from pathlib import Path

from orderbridge.logs import register_secret, setup_logging


def test_secrets_are_masked_in_every_log_line(tmp_path: Path) -> None:
    log_file = tmp_path / "ob.log"
    setup_logging("INFO", str(log_file))
    register_secret("tok-SECRET-12345")
    log = logging.getLogger("orderbridge.test")
    log.info("calling with token %s", "tok-SECRET-12345")
    try:
        raise ValueError("bad token tok-SECRET-12345")
    except ValueError:
        log.exception("failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert "tok-SECRET-12345" not in text
    assert text.count("***") >= 2 and "ValueError" in text
    setup_logging("WARNING")
