"""The JSON codec of the hot paths reads and writes what the standard library did, and fails alike."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbridge import json_codec

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_what_it_writes_reads_back_as_the_same_value_with_either_codec(value: object) -> None:
    text = json_codec.dumps(value)
    assert json_codec.loads(text) == value
    assert json.loads(text) == value
    assert json_codec.loads(json.dumps(value)) == value


def test_what_orjson_refuses_goes_to_the_standard_library() -> None:
    huge = 2**70
    assert json_codec.loads(f'{{"n": {huge}}}') == {"n": huge}
    assert json_codec.dumps({"n": huge}) == f'{{"n":{huge}}}'
    assert math.isnan(json_codec.loads('{"x": NaN}')["x"])
    lone = "a\ud800b"  # a lone surrogate, as a JSON escape may carry
    assert json_codec.loads(json.dumps(lone)) == lone
    assert json_codec.dumps(lone) == json.dumps(lone)


class Status(StrEnum):
    SHIPPED = "shipped"


@dataclass
class Box:
    weight: int


def test_default_sees_datetimes_and_dataclasses_and_the_rest_is_written_as_json_does() -> None:
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert json_codec.loads(json_codec.dumps({"at": at}, default=str)) == {"at": str(at)}
    assert json_codec.loads(json_codec.dumps([Box(3)], default=str)) == ["Box(weight=3)"]
    assert json_codec.loads(json_codec.dumps({"s": Status.SHIPPED})) == json.loads(json.dumps({"s": Status.SHIPPED}))
    assert json_codec.loads(json_codec.dumps({1: "a", None: "b"})) == json.loads(json.dumps({1: "a", None: "b"}))


def test_bad_input_fails_as_with_the_standard_library() -> None:
    with pytest.raises(ValueError, match="Expecting"):  # the standard library's message
        json_codec.loads("{not json")
    with pytest.raises(TypeError):
        json_codec.dumps({"price": Decimal("1.50")})
