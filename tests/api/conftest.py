from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orderbridge.api.settings import ApiSettings
from tests.api.api_support import Served, serve, standard_keys, two_merchants


@pytest.fixture
def api(make_hub: Any) -> Iterator[Served]:
    hub = make_hub(two_merchants())
    for served in serve(hub, ApiSettings(bucket_size=100, leak_seconds=0.6)):
        standard_keys(served)
        yield served
