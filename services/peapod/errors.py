"""One exception hierarchy for the whole system.

Every error that crosses the bus is one of these; the apiserver turns it into a
reply envelope (``{"error": {"code": "NotFound", "message": ...}}``), the client
side turns the envelope back into the same class, and the CLI prints its
message on one line and exits non-zero. Keeping the mapping one-to-one means a
user sees exactly the sentence the server wrote.
"""

from __future__ import annotations


class PeapodError(Exception):
    """Base class; ``code`` is the wire name of the error."""

    code = "InternalError"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class NotFound(PeapodError):
    code = "NotFound"


class AlreadyExists(PeapodError):
    code = "AlreadyExists"


class Conflict(PeapodError):
    """A compare-and-set write lost: the object changed since it was read."""

    code = "Conflict"


class Invalid(PeapodError):
    """The object or request is malformed; the message names each problem and where."""

    code = "Invalid"


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


def from_wire(payload: dict[str, str]) -> PeapodError:
    """Rebuild the error a server sent; unknown codes become a plain PeapodError."""
    cls = _BY_CODE.get(payload.get("code", ""), PeapodError)
    return cls(payload.get("message", "unknown error"))
