from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbridge.domain.refs import RefRule, cust_ref_candidate


def test_short_clean_number_is_kept() -> None:
    assert cust_ref_candidate("1656-9927", "1", RefRule(max_length=20)) == "1656-9927"


def test_long_number_is_shortened_with_a_hash() -> None:
    rule = RefRule(max_length=12, allowed="A-Z0-9")
    ref = cust_ref_candidate("1656-9927-9120-7805", "1", rule)
    assert len(ref) <= 12 and re.fullmatch("[A-Z0-9]+", ref)
    assert ref == cust_ref_candidate("1656-9927-9120-7805", "1", rule)  # deterministic


def test_candidates_differ_and_depend_on_source() -> None:
    rule = RefRule(max_length=12)
    a = [cust_ref_candidate("ORDER/123456789012345", "1", rule, i) for i in range(5)]
    assert len(set(a)) == 5
    assert cust_ref_candidate("X" * 30, "1", rule) != cust_ref_candidate("X" * 30, "2", rule)


def test_rule_refuses_unusable_settings() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        RefRule(max_length=4)
    with pytest.raises(ValueError, match="at least 10"):
        RefRule(allowed="a-f")


@given(st.text(min_size=1, max_size=80), st.integers(min_value=8, max_value=40))
def test_any_number_gives_a_valid_reference(number: str, max_length: int) -> None:
    rule = RefRule(max_length=max_length, allowed="A-Za-z0-9-")
    ref = cust_ref_candidate(number, "7", rule)
    assert 0 < len(ref) <= max_length
    assert re.fullmatch("[A-Za-z0-9-]+", ref)


@given(st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=50, unique=True))
def test_distinct_numbers_rarely_collide(numbers: list[str]) -> None:
    rule = RefRule(max_length=16, allowed="A-Z0-9")
    refs = {cust_ref_candidate(n, "1", rule) for n in numbers}
    assert len(refs) == len(numbers)
