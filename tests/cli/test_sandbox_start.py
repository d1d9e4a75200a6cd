"""Several sandboxes started together (the demo, the bench, the chaos runs, the tests): each
answers once started, and one that cannot start stops the others and says why."""

from __future__ import annotations

import httpx
import pytest

from orderbridge.connectors.errors import ConfigError
from orderbridge.demo.sandboxes import SandboxProcess, running, start_all


def test_sandboxes_started_together_all_answer_and_all_stop() -> None:
    boxes = [SandboxProcess("houzz", {"accounts": [], "rate_limit": False}), SandboxProcess("tradegecko"),
             SandboxProcess("wix", {"demo_site": False})]
    with running(*boxes) as started:
        assert started == boxes
        for box in boxes:
            assert httpx.get(box.url + "/__sandbox__/health", timeout=5).status_code == 200
    for box in boxes:
        assert box.proc is not None and box.proc.wait(10) is not None  # stopped on leaving


def test_one_sandbox_that_cannot_start_stops_the_others_and_says_why() -> None:
    good, bad = SandboxProcess("houzz", {"accounts": [], "rate_limit": False}), SandboxProcess("nosuch")
    with pytest.raises(ConfigError) as failed:
        start_all([good, bad])
    assert "the nosuch sandbox did not start" in str(failed.value)
    assert "no sandbox named 'nosuch'" in str(failed.value)  # the sandbox command's own words
    assert good.proc is not None and good.proc.wait(10) is not None  # not left running
