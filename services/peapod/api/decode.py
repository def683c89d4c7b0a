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


# a pydantic type error: the type the field wants, in OpenAPI's words (as kubectl says it)
_EXPECTED_TYPES = {"string_type": "string", "int_type": "integer", "int_from_float": "integer",
                   "bool_type": "boolean", "float_type": "number", "list_type": "array",
                   "dict_type": "map", "model_type": "map", "model_attributes_type": "map"}
_OPENAPI_TYPES = {dict: "map", list: "array", str: "string", int: "integer", float: "number",
                  bool: "boolean", type(None): "null"}
_BOUNDS = {"greater_than_equal": ("ge", "greater than or equal to"),
           "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "less than or equal to"), "less_than": ("lt", "less than")}


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
        elif err["type"] in _EXPECTED_TYPES:  # kubectl's schema validation words
            got = _OPENAPI_TYPES.get(type(err["input"]), "value")
            problems.append(f"{format_location(loc)}: invalid type: got \"{got}\", expected "
                            f"\"{_EXPECTED_TYPES[err['type']]}\"")
        elif err["type"] in _BOUNDS:  # Kubernetes' words for a number out of its range
            bound = err.get("ctx", {}).get(_BOUNDS[err["type"]][0])
            problems.append(f"{format_location(loc)}: Invalid value: {json.dumps(err['input'])}: "
                            f"must be {_BOUNDS[err['type']][1]} {bound}")
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
