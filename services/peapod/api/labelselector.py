"""LabelSelector, as Kubernetes' meta/v1 defines it: matchLabels and matchExpressions.

Shared by the workload controllers' selectors and the scheduler's pod
affinity and topology spread terms.
"""

from __future__ import annotations

from typing import Literal

from peapod.api.base import Model


class LabelSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: dict[str, str] | None) -> bool:
        """Kubernetes' LabelSelectorAsSelector(...).Matches: every term must hold."""
        labels = labels or {}
        if any(labels.get(k) != v for k, v in (self.match_labels or {}).items()):
            return False
        return all(_requirement_holds(r, labels) for r in self.match_expressions or [])

    def to_query(self) -> str:
        """The selector as ``kubectl get -l`` text (``app=web,tier in (a,b)``), for describe."""
        terms = [f"{k}={v}" for k, v in sorted((self.match_labels or {}).items())]
        for req in self.match_expressions or []:
            values = ",".join(req.values or [])
            terms.append({"In": f"{req.key} in ({values})", "NotIn": f"{req.key} notin ({values})",
                          "Exists": req.key, "DoesNotExist": f"!{req.key}"}[req.operator])
        return ",".join(terms)


def _requirement_holds(req: LabelSelectorRequirement, labels: dict[str, str]) -> bool:
    if req.operator == "In":
        return req.key in labels and labels[req.key] in (req.values or [])
    if req.operator == "NotIn":
        return labels.get(req.key) not in (req.values or [])
    if req.operator == "Exists":
        return req.key in labels
    return req.key not in labels


def requirement_problems(where: str, selector: LabelSelector) -> list[str]:
    """Kubernetes' ValidateLabelSelectorRequirement: values by operator."""
    problems = []
    for i, req in enumerate(selector.match_expressions or []):
        path = f"{where}.matchExpressions[{i}].values"
        if req.operator in ("In", "NotIn") and not req.values:
            problems.append(f"{path}: Required value: must be specified when `operator` is "
                            "'In' or 'NotIn'")
        if req.operator in ("Exists", "DoesNotExist") and req.values:
            problems.append(f"{path}: Forbidden: may not be specified when `operator` is "
                            "'Exists' or 'DoesNotExist'")
    return problems
