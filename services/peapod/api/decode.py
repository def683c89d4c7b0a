"""Decoding one message or stored value into a model, with one readable line per problem.

Split from ``manifest.py`` so that a reader of the bus (the kubelet above
all, whose memory a Pi counts) decodes pods and events without loading the
manifest reader (YAML) and every other kind's models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from peapod.api.base import Model
from peapod.errors import Invalid

M = TypeVar("M", bound=Model)
_JSON_TYPES = {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def format_location(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<root>"


def pydantic_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        if err["type"] == "extra_forbidden":
            problems.append(f"{format_location(loc)}: unknown field")
        elif err["type"] == "missing":
            problems.append(f"{format_location(loc)}: required value")
        elif err["type"] == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            problems.append(f"{format_location(loc)}: unsupported value {err['input']!r}, "
                            f"supported values: {expected}")
        else:
            problems.append(f"{format_location(loc)}: {err['msg']}")
    return problems


def _a(what: str) -> str:
    return f"{'an' if what[:1] in 'AEIOUaeiou' else 'a'} {what}"


def decode_json_object(data: bytes, what: str) -> dict[str, Any]:
    """A message or stored value that must be a JSON object; ``Invalid`` says why it is not
    one, in one line (not JSON, not UTF-8, a JSON list …). Readers of the bus use it so no
    writer can crash them."""
    try:
        doc = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise Invalid(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Invalid(f"not {_a(what)}: a JSON {_JSON_TYPES.get(type(doc), 'value')}, "
                      "not an object")
    return doc


def decode_model(data: bytes, model: type[M], what: str | None = None) -> M:
    """``data`` as a ``model``, or ``Invalid`` naming each field that is wrong."""
    what = what or model.__name__
    return validate_model(decode_json_object(data, what), model, what)


def validate_model(doc: dict[str, Any], model: type[M], what: str | None = None) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise Invalid(f"not {_a(what or model.__name__)}: "
                      + "; ".join(pydantic_problems(exc))) from None
