"""Label selectors as ``kubectl get -l`` writes them, and the field selector we serve.

Kubernetes' selector syntax (``labels.Parse``): terms joined by commas, each one of
``key=value`` (or ``==``), ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``,
``key`` (exists) and ``!key`` (does not exist). A text parses into a
:class:`LabelSelector` whose matchLabels/matchExpressions then decide, so ``-l`` and
the workloads' selectors match in exactly one way. ``!=`` and ``notin`` match objects
without the key, as in Kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from peapod.api.labelselector import LabelSelector, LabelSelectorRequirement
from peapod.errors import Invalid

Matcher = Callable[[dict[str, str]], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|!=|=)\s*(?P<value>{_VALUE})$")
_EXISTS = re.compile(rf"^(?P<bang>!)?\s*(?P<key>{_KEY})$")


def _terms(text: str) -> list[str]:
    """The comma-separated terms; a comma inside ``( )`` belongs to its set."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [t.strip() for t in terms]


def label_selector(text: str) -> LabelSelector:
    """The selector ``text`` means; Invalid, naming the term, if it is not one."""
    labels: dict[str, str] = {}
    expressions: list[LabelSelectorRequirement] = []
    for term in _terms(text):
        if not term:
            raise Invalid(f"invalid label selector {text!r}: empty term")
        if m := _SET.match(term):
            values = [v.strip() for v in m["values"].split(",")]
            if any(not re.fullmatch(_VALUE, v) for v in values) or values == [""]:
                raise Invalid(f"invalid label selector {text!r}: {term!r}: the values in ( ) "
                              "must be label values separated by commas")
            expressions.append(LabelSelectorRequirement(
                key=m["key"], operator="In" if m["op"] == "in" else "NotIn", values=values))
        elif m := _EQUALITY.match(term):
            if m["op"] == "!=":
                expressions.append(LabelSelectorRequirement(key=m["key"], operator="NotIn",
                                                            values=[m["value"]]))
            elif labels.get(m["key"], m["value"]) != m["value"]:  # a=x,a=y: nothing matches
                expressions.append(LabelSelectorRequirement(key=m["key"], operator="In",
                                                            values=[m["value"]]))
            else:
                labels[m["key"]] = m["value"]
        elif m := _EXISTS.match(term):
            expressions.append(LabelSelectorRequirement(
                key=m["key"], operator="DoesNotExist" if m["bang"] else "Exists"))
        else:
            raise Invalid(f"invalid label selector {text!r}: {term!r} is none of key=value, "
                          "key!=value, key in (a,b), key notin (a,b), key, !key")
    return LabelSelector(match_labels=labels or None, match_expressions=expressions or None)


def parse_label_selector(text: str | None) -> Matcher:
    """A predicate over an object's labels; everything matches an empty selector."""
    if not text:
        return lambda labels: True
    return label_selector(text).matches


def parse_field_selector(text: str | None) -> Callable[[dict[str, object]], bool]:
    """Supports ``spec.nodeName=<node>``, which ``describe node`` uses."""
    if not text:
        return lambda obj: True
    key, _, value = text.partition("=")
    if key.strip() != "spec.nodeName":
        raise Invalid(f"field selector {text!r} not supported: only spec.nodeName=<node>")
    wanted = value.strip()

    def matches(obj: dict[str, object]) -> bool:
        spec = obj.get("spec")
        return isinstance(spec, dict) and spec.get("nodeName") == wanted
    return matches
