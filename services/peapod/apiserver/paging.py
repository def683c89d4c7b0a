"""Lists in pages (``limit`` and ``continue``), as Kubernetes' apiserver serves them.

A reply travels in one NATS message, which carries at most ``max_payload``
(1 MiB by default). A list of a few hundred pods is larger than that, so a
list request may ask for a page: ``{"limit": 500}`` returns at most 500 items
*and* at most ``PAGE_BYTES`` of them, as a list object::

    {"metadata": {"continue": "<token>", "remainingItemCount": 812}, "items": [...]}

and ``{"continue": "<token>"}`` asks for the next page. The token is opaque to
clients (base64 of JSON, as Kubernetes' is); it names the last item returned,
and the next page starts after it in (namespace, name) order. Unlike
Kubernetes' pages, which are all read at the first page's resourceVersion,
each page is read from the store as it is then: an object created or deleted
between two pages may be missing or present (the bucket keeps no snapshot).

A request without ``limit`` or ``continue`` gets the whole list, as before;
if that is too large for one message the reply says so (``serve`` refuses
any reply over ``max_payload``), and the CLI always asks in pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from nats.aio.msg import Msg

from peapod.bus.client import Handler
from peapod.errors import Invalid

# What a page's items may weigh: under the 1 MiB default max_payload, with room for the
# envelope. A page returns fewer items than ``limit`` rather than go over it.
PAGE_BYTES = 768 * 1024
_TOKEN_VERSION = "meta.k8s.io/v1"


def _position(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def continue_token(after: tuple[str, str]) -> str:
    doc = {"v": _TOKEN_VERSION, "start": list(after)}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def _after(token: Any) -> tuple[str, str]:
    """The position a ``continue`` token names; Kubernetes' wording when it is not one."""
    problem = 'continue: Invalid value: "...": continue key is not valid'
    if not isinstance(token, str) or not token:
        raise Invalid(problem)
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        raise Invalid(problem) from None
    start = doc.get("start") if isinstance(doc, dict) else None
    if (doc.get("v") if isinstance(doc, dict) else None) != _TOKEN_VERSION or not (
            isinstance(start, list) and len(start) == 2 and all(isinstance(p, str) for p in start)):
        raise Invalid(problem)
    return start[0], start[1]


def _limit(payload: dict[str, Any]) -> int | None:
    limit = payload.get("limit")
    if limit is None or limit == 0:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise Invalid(f"limit: Invalid value: {json.dumps(limit)[:40]}: must be a non-negative "
                      "integer")
    return limit


def page(items: list[dict[str, Any]], payload: dict[str, Any], *,
         budget: int = PAGE_BYTES) -> dict[str, Any]:
    """The page of ``items`` that ``payload``'s ``limit`` and ``continue`` ask for."""
    limit = _limit(payload)
    ordered = sorted(items, key=_position)
    if payload.get("continue") is not None:
        after = _after(payload["continue"])
        ordered = [obj for obj in ordered if _position(obj) > after]
    taken: list[dict[str, Any]] = []
    used = 0
    for obj in ordered:
        size = len(json.dumps(obj, separators=(",", ":")).encode()) + 1
        if taken and (used + size > budget or (limit is not None and len(taken) >= limit)):
            break
        taken.append(obj)
        used += size
    metadata: dict[str, Any] = {}
    remaining = len(ordered) - len(taken)
    if remaining:
        metadata = {"continue": continue_token(_position(taken[-1])),
                    "remainingItemCount": remaining}
    return {"metadata": metadata, "items": taken}


def paged(handler: Handler) -> Handler:
    """``handler`` (a list) answering in pages when the request has ``limit`` or ``continue``."""

    async def in_pages(payload: dict[str, Any], msg: Msg) -> Any:
        wants_pages = payload.get("limit") is not None or payload.get("continue") is not None
        _limit(payload)  # a bad limit is refused before anything is read
        if payload.get("continue") is not None:
            _after(payload["continue"])
        items = await handler(payload, msg)
        return page(items, payload) if wants_pages else items

    return in_pages
