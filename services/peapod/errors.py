"""One exception hierarchy for the whole system.

Every error that crosses the bus is one of these; the apiserver turns it into a
reply envelope (``{"error": {"code": "NotFound", "message": ...}}``), the client
side turns the envelope back into the same class, and the CLI prints its
message on one line and exits non-zero. Keeping the mapping one-to-one means a
user sees exactly the sentence the server wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


class PeapodError(Exception):
    """Base class; ``code`` is the wire name of the error."""

    code = "InternalError"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class NotFound(PeapodError):
    code = "NotFound"


class AlreadyExists(PeapodError):
    code = "AlreadyExists"


class Conflict(PeapodError):
    """A compare-and-set write lost: the object changed since it was read."""

    code = "Conflict"


class Invalid(PeapodError):
    """The object or request is malformed; the message names each problem and where.

    Built by ``invalid`` for an object, it also carries Kubernetes' Status details (the
    bare kind, the name, one cause per problem), from which the CLI words kubectl's
    ``The Pod "x" is invalid: ...``; the message alone stays the apiserver's sentence.
    """

    code = "Invalid"

    def __init__(self, message: str, *, kind: str = "", name: str = "",
                 causes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.kind, self.name, self.causes = kind, name, tuple(causes)

    def to_wire(self) -> dict[str, Any]:
        wire = super().to_wire()
        if self.kind:
            wire["details"] = {"kind": self.kind, "name": self.name,
                               "causes": [_cause_to_wire(cause) for cause in self.causes]}
        return wire


# a cause's field path (spec.containers[0].image, data[.dockerconfigjson]) before its first
# ": "; a reason (Forbidden, Required value) starts upper-case, a JSON field lower-case
_FIELD = re.compile(r"^([a-z][^\s:\[]*(?:\[[^\]]*\][^\s:\[]*)*): (.*)$", re.DOTALL)


def _cause_to_wire(cause: str) -> dict[str, str]:
    """Kubernetes' StatusCause: ``spec.x: Required value`` is field ``spec.x``, message
    ``Required value``; a cause that names no field is all message."""
    found = _FIELD.match(cause)
    if found is None:
        return {"field": "", "message": cause}
    return {"field": found[1], "message": found[2]}


def _cause_from_wire(cause: Any) -> str:
    if not isinstance(cause, dict):
        return str(cause)
    field, message = str(cause.get("field") or ""), str(cause.get("message") or "")
    return f"{field}: {message}" if field else message


def aggregate(causes: Sequence[str]) -> str:
    """apimachinery's Aggregate.Error(): one cause as it is, several (duplicates dropped)
    as ``[a, b]``."""
    unique = list(dict.fromkeys(causes))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def invalid(kind: str, name: str | None, causes: Sequence[str]) -> Invalid:
    """apimachinery's NewInvalid: ``Pod "x" is invalid: <cause>``, or ``[a, b]`` for
    several. ``kind`` is qualified by its group where Kubernetes' is (``Deployment.apps``,
    ``Job.batch``); the details carry the bare kind, as Kubernetes' do."""
    message = f'{kind} "{name or ""}" is invalid'
    if causes:
        message += f": {aggregate(causes)}"
    return Invalid(message, kind=kind.partition(".")[0], name=name or "", causes=causes)


class Forbidden(PeapodError):
    code = "Forbidden"


class Unavailable(PeapodError):
    """The cluster (or a node) could not be reached in time."""

    code = "Unavailable"


class Expired(PeapodError):
    """A resourceVersion older than what is kept (Kubernetes' 410 Gone)."""

    code = "Expired"


class TooLarge(PeapodError):
    """A request or reply that one NATS message cannot carry (its ``max_payload``)."""

    code = "RequestEntityTooLarge"


_BY_CODE: dict[str, type[PeapodError]] = {
    cls.code: cls
    for cls in (PeapodError, NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Unavailable,
                TooLarge, Expired)
}


def from_wire(payload: dict[str, Any]) -> PeapodError:
    """Rebuild the error a server sent; unknown codes become a plain PeapodError."""
    cls = _BY_CODE.get(payload.get("code", ""), PeapodError)
    message = str(payload.get("message", "unknown error"))
    details = payload.get("details")
    if cls is Invalid and isinstance(details, dict):
        return Invalid(message, kind=str(details.get("kind") or ""),
                       name=str(details.get("name") or ""),
                       causes=[_cause_from_wire(c) for c in details.get("causes") or []])
    return cls(message)
