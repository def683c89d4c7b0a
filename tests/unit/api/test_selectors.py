"""`kubectl get -l` selectors: equality- and set-based, matched as Kubernetes' labels.Parse
and Selector.Matches do (the cases follow its selector_test.go)."""

from __future__ import annotations

import pytest

from peapod.api.selectors import label_selector, parse_label_selector
from peapod.errors import Invalid

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(("text", "matches"), [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("missing!=x", True),  # != matches an object without the key
    ("app,tier", True),
    ("!missing", True),
    ("!app", False),
    ("env in (prod,staging)", True),
    ("env in (staging, dev)", False),
    ("env notin (staging,dev)", True),
    ("missing notin (x)", True),  # notin matches an object without the key
    ("missing in (x)", False),
    ("app=web,env in (prod),tier notin (back),!legacy", True),
    ("app=web,app=db", False),
    ("env in (prod,)", True),  # an empty value is a value
])
def test_selectors_match_as_kubernetes(text: str, matches: bool) -> None:
    assert parse_label_selector(text)(LABELS) is matches


def test_a_set_based_selector_becomes_match_expressions() -> None:
    selector = label_selector("app=web,env in (a,b),tier notin (c),ok,!gone")
    assert selector.to_query() == "app=web,env in (a,b),tier notin (c),ok,!gone"


@pytest.mark.parametrize("text", ["app in web", "app in (a b)", "=web", "app=web,", "a b",
                                  "app in ((a))", "app=we$b"])
def test_what_is_not_a_selector_is_refused_naming_the_term(text: str) -> None:
    with pytest.raises(Invalid, match="invalid label selector"):
        parse_label_selector(text)
