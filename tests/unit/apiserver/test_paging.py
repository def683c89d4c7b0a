"""Pages of a list: ``limit``, ``continue``, and a byte budget under NATS' max_payload."""

from __future__ import annotations

import base64
import json

import pytest

from peapod.apiserver.paging import continue_token, page
from peapod.errors import Invalid


def obj(namespace: str, name: str, size: int = 0) -> dict:
    return {"metadata": {"namespace": namespace, "name": name,
                         "annotations": {"pad": "x" * size}}}


ITEMS = [obj("b", "z"), obj("a", "y"), obj("b", "a"), obj("a", "x")]


def names(result: dict) -> list[str]:
    return [f'{o["metadata"]["namespace"]}/{o["metadata"]["name"]}' for o in result["items"]]


def test_pages_follow_namespace_then_name_and_end_without_a_token():
    first = page(ITEMS, {"limit": 3})
    assert names(first) == ["a/x", "a/y", "b/a"]
    assert first["metadata"]["remainingItemCount"] == 1
    last = page(ITEMS, {"limit": 3, "continue": first["metadata"]["continue"]})
    assert names(last) == ["b/z"] and last["metadata"] == {}


def test_no_limit_is_one_page_and_limit_zero_means_none():
    assert names(page(ITEMS, {"limit": 0})) == ["a/x", "a/y", "b/a", "b/z"]
    assert page(ITEMS, {"limit": 0})["metadata"] == {}


def test_a_page_stops_at_the_byte_budget_before_the_limit():
    big = [obj("a", f"p{i:02}", size=1000) for i in range(10)]
    result = page(big, {"limit": 500}, budget=3500)
    assert names(result) == ["a/p00", "a/p01", "a/p02"]
    assert result["metadata"]["remainingItemCount"] == 7


def test_one_item_over_the_budget_still_makes_a_page():
    result = page([obj("a", "huge", size=5000), obj("a", "z")], {"limit": 10}, budget=100)
    assert names(result) == ["a/huge"] and result["metadata"]["remainingItemCount"] == 1


def test_an_object_deleted_between_pages_does_not_stop_the_next():
    first = page(ITEMS, {"limit": 2})  # ends at a/y
    rest = [o for o in ITEMS if o["metadata"]["name"] != "y"]
    assert names(page(rest, {"continue": first["metadata"]["continue"]})) == ["b/a", "b/z"]


@pytest.mark.parametrize("token", ["", "%%%", base64.b64encode(b"[1]").decode(),
                                   base64.b64encode(json.dumps({"v": "x", "start": ["a", "b"]})
                                                    .encode()).decode(),
                                   base64.b64encode(json.dumps({"v": "meta.k8s.io/v1",
                                                                "start": ["a"]}).encode()).decode(),
                                   7])
def test_a_token_that_is_not_ours_is_refused_in_kubernetes_words(token):
    with pytest.raises(Invalid, match="continue key is not valid"):
        page(ITEMS, {"continue": token})


@pytest.mark.parametrize("limit", [-1, "5", 1.5, True])
def test_a_bad_limit_is_refused(limit):
    with pytest.raises(Invalid, match="limit: Invalid value"):
        page(ITEMS, {"limit": limit})


def test_the_token_round_trips():
    token = continue_token(("ns", "name.with.dots"))
    assert names(page([obj("ns", "name.with.dots"), obj("ns", "zz")], {"continue": token})) == [
        "ns/zz"]
