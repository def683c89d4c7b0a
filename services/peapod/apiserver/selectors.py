"""Kubernetes' equality-based label selectors and the one field selector we serve.

``app=web,tier!=db,canary,!legacy`` — the forms ``kubectl get -l`` accepts
most often. Set-based selectors (``env in (a,b)``) are refused with a clear
message rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from peapod.errors import Invalid

Matcher = Callable[[dict[str, str]], bool]


def parse_label_selector(text: str | None) -> Matcher:
    if not text:
        return lambda labels: True
    tests: list[Matcher] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            raise Invalid(f"invalid label selector {text!r}: empty term")
        if " in " in term or " notin " in term or "(" in term:
            raise Invalid(f"invalid label selector {text!r}: set-based selectors are not "
                          "supported, use key=value, key!=value, key or !key")
        tests.append(_term(term, text))
    return lambda labels: all(test(labels) for test in tests)


def _term(term: str, text: str) -> Matcher:
    if "!=" in term:
        key, value = (p.strip() for p in term.split("!=", 1))
        return lambda labels: labels.get(key) != value
    if "==" in term or "=" in term:
        key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
        if not key:
            raise Invalid(f"invalid label selector {text!r}: missing key")
        return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    return lambda labels: term in labels


def parse_field_selector(text: str | None) -> Callable[[dict[str, object]], bool]:
    """Supports ``spec.nodeName=<node>``, which ``describe node`` uses."""
    if not text:
        return lambda obj: True
    key, _, value = text.partition("=")
    if key.strip() != "spec.nodeName":
        raise Invalid(f"field selector {text!r} not supported: only spec.nodeName=<node>")
    wanted = value.strip()
    return lambda obj: (obj.get("spec") or {}).get("nodeName") == wanted  # type: ignore[union-attr]
