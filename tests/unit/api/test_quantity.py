"""Kubernetes resource quantities: parsing to base units, rounding, printing back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from peapod.api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes, parse_quantity


@pytest.mark.parametrize(("text", "millis"), [
    ("100m", 100), ("0.5", 500), ("1", 1000), ("2", 2000), ("1.5", 1500), (".25", 250),
    ("250m", 250), ("+1", 1000), ("1e-3", 1), (0.5, 500), (2, 2000),
])
def test_cpu_quantities_become_millicores(text, millis):
    assert cpu_millis(text) == millis


def test_cpu_below_one_millicore_rounds_up_as_kubernetes_does():
    assert cpu_millis("0.0001") == 1
    assert cpu_millis("1500u") == 2
    assert cpu_millis("0") == 0


@pytest.mark.parametrize(("text", "size"), [
    ("64Mi", 67108864), ("1Ki", 1024), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("1G", 10**9),
    ("1k", 1000), ("1M", 10**6), ("129e6", 129_000_000), ("129M", 129_000_000), ("1Ti", 2**40),
    ("1000", 1000), (512, 512),
])
def test_memory_quantities_become_bytes(text, size):
    assert memory_bytes(text) == size


def test_fractional_bytes_round_up():
    assert memory_bytes("1500m") == 2


def test_decimal_parsing_is_exact():
    assert parse_quantity("0.1") == Decimal("0.1")
    assert parse_quantity("0.1") * 3 == Decimal("0.3")


@pytest.mark.parametrize("text", ["100x", "1K", "1mi", "Mi", "", "1.2.3", "1 Mi", "one", "1e", "0x10"])
def test_malformed_quantities_are_refused_with_the_input_named(text):
    with pytest.raises(ValueError, match="quantities must match the regular expression") as info:
        parse_quantity(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["-1", "-100m", -1, "-1Gi"])
def test_negative_quantities_are_refused(text):
    with pytest.raises(ValueError, match="must not be negative"):
        parse_quantity(text)


@pytest.mark.parametrize(("millis", "text"), [
    (0, "0"), (100, "100m"), (500, "500m"), (1000, "1"), (1500, "1500m"), (4000, "4"),
])
def test_format_cpu_prints_whole_cores_without_suffix_and_the_rest_in_millicores(millis, text):
    assert format_cpu(millis) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0"), (1000, "1000"), (1024, "1Ki"), (67108864, "64Mi"), (2**30, "1Gi"),
    (3 * 2**29, "1536Mi"), (1024 * 10**6, "1000000Ki"), (10**9, "1000000000"), (1025, "1025"),
])
def test_format_memory_uses_the_largest_binary_suffix_that_divides_exactly(size, text):
    assert format_memory(size) == text


@pytest.mark.parametrize("value", [0, 1, 999, 1000, 1024, 1500, 2**20, 3 * 2**29, 10**9])
def test_formatted_quantities_parse_back_to_the_same_value(value):
    assert cpu_millis(format_cpu(value)) == value
    assert memory_bytes(format_memory(value)) == value
