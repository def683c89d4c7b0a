"""kubectl's ``-o jsonpath=TEMPLATE`` and ``-o custom-columns=SPEC``, on an object's JSON.

The subset of client-go's jsonpath that people write: text with ``{…}`` actions,
each a path from the current object (``@``, ``$`` or nothing) made of ``.field``
(``\\.`` for a dot inside a key), ``..field`` (recursive), ``['key']``, ``[n]``,
``[start:end]``, ``[*]`` and filters ``[?(@.type=="Ready")]`` (``==``, ``!=``,
``<``, ``<=``, ``>``, ``>=``, or a path alone: it exists); quoted literals
(``{"\\n"}``); ``{range PATH}…{end}``. As ``kubectl get``, a missing field prints
nothing (``--allow-missing-template-keys`` is true by default), several results of
one action are joined by a space, strings print raw and maps and lists as JSON.
Anything else is refused in client-go's words before a request is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from peapod.errors import Invalid

Step = Callable[[Any], Iterator[Any]]
_FILTER = re.compile(r"^(?P<left>@[^<>=!]*?)\s*(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<right>.+?))?\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@dataclass
class _Node:
    text: str | None = None          # literal text
    path: list[Step] | None = None   # an action printing what the path finds
    body: list[_Node] = field(default_factory=list)  # range's body (path is its list)
    is_range: bool = False


class Template:
    """A parsed template; ``render(doc)`` prints it as kubectl would."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = _parse_template(source)

    def render(self, doc: Any) -> str:
        return "".join(_render(self.nodes, doc, doc))

    def values(self, doc: Any) -> list[Any]:
        """What the template's single path finds (custom-columns)."""
        return [value for node in self.nodes if node.path is not None
                for value in _evaluate(node.path, doc, doc)]


def _error(source: str, why: str) -> Invalid:
    return Invalid(f"error parsing jsonpath {source}, {why}")


def _parse_template(source: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[list[_Node]] = [root]
    at = 0
    while at < len(source):
        start = source.find("{", at)
        if start < 0:
            stack[-1].append(_Node(text=source[at:]))
            break
        if start > at:
            stack[-1].append(_Node(text=source[at:start]))
        end = _action_end(source, start)
        action = source[start + 1:end].strip()
        at = end + 1
        if action == "end":
            if len(stack) == 1:
                raise _error(source, "not in range, nothing to end")
            stack.pop()
        elif action.startswith("range "):
            node = _Node(path=_parse_path(source, action.removeprefix("range ").strip()),
                         is_range=True)
            stack[-1].append(node)
            stack.append(node.body)
        elif action.startswith('"'):
            stack[-1].append(_Node(text=_literal(source, action)))
        else:
            stack[-1].append(_Node(path=_parse_path(source, action)))
    if len(stack) > 1:
        raise _error(source, "range without end")
    return root


def _action_end(source: str, start: int) -> int:
    quote = None
    for i in range(start + 1, len(source)):
        char = source[i]
        if quote:
            if char == "\\":
                continue
            if char == quote and source[i - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "}":
            return i
    raise _error(source, "unclosed action")


def _literal(source: str, action: str) -> str:
    if len(action) < 2 or not action.endswith('"'):
        raise _error(source, f"unterminated string {action}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), action[1:-1])


def _root(value: Any) -> Iterator[Any]:
    """``$``: a marker ``_evaluate`` reads as "start from the document, not the current item"."""
    yield value


def _parse_path(source: str, text: str) -> list[Step]:
    steps: list[Step] = [_root] if text[:1] == "$" else []
    at = 1 if text[:1] in ("@", "$") else 0
    while at < len(text):
        if text.startswith("..", at):
            name, at = _name(text, at + 2)
            steps.append(_recursive(name))
        elif text[at] == ".":
            name, at = _name(text, at + 1)
            if name:
                steps.append(_child(name))
        elif text[at] == "[":
            close = _bracket_end(source, text, at)
            steps.append(_subscript(source, text[at + 1:close].strip()))
            at = close + 1
        else:
            raise _error(source, f"unrecognized character in action: {text[at]!r}")
    return steps


def _name(text: str, at: int) -> tuple[str, int]:
    chars: list[str] = []
    while at < len(text) and text[at] not in ".[":
        if text[at] == "\\" and at + 1 < len(text):
            at += 1
        chars.append(text[at])
        at += 1
    return "".join(chars), at


def _bracket_end(source: str, text: str, at: int) -> int:
    depth, quote = 0, None
    for i in range(at, len(text)):
        char = text[i]
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0 and char == "]":
                return i
    raise _error(source, "unterminated array")


def _subscript(source: str, inner: str) -> Step:
    if inner == "*":
        return _all
    if inner[:1] in "\"'" and inner[-1:] == inner[:1] and len(inner) >= 2:
        return _child(inner[1:-1])
    if inner.startswith("?(") and inner.endswith(")"):
        return _filter(source, inner[2:-1].strip())
    try:
        if ":" in inner:
            bounds = [int(b) if b.strip() else None for b in inner.split(":")[:2]]
            return _slice(bounds[0], bounds[1])
        return _index(int(inner))
    except ValueError:
        raise _error(source, f"invalid array index {inner}") from None


def _child(name: str) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict) and name in value:
            yield value[name]
    return step


def _recursive(name: str) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            if name in value:
                yield value[name]
            children: Sequence[Any] = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            return
        for child in children:
            yield from step(child)
    return step


def _all(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        yield from value
    elif isinstance(value, dict):
        yield from value.values()


def _index(index: int) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list) and -len(value) <= index < len(value):
            yield value[index]
    return step


def _slice(start: int | None, end: int | None) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list):
            yield from value[start:end]
    return step


def _filter(source: str, condition: str) -> Step:
    found = _FILTER.match(condition)
    if not found:
        raise _error(source, f"unrecognized filter {condition}")
    left = _parse_path(source, found["left"])
    op, right = found["op"], found["right"]
    wanted = _operand(source, right) if right is not None else None

    def keep(item: Any) -> bool:
        values = list(_evaluate(left, item, item))
        if op is None:
            return bool(values)
        try:
            return any(_OPS[op](value, wanted) for value in values)
        except TypeError:
            return False

    def step(value: Any) -> Iterator[Any]:
        items = value if isinstance(value, list) else [value]
        yield from (item for item in items if keep(item))
    return step


def _operand(source: str, text: str) -> Any:
    if text[:1] in "\"'" and text[-1:] == text[:1] and len(text) >= 2:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        raise _error(source, f"unrecognized filter operand {text}") from None


def _evaluate(steps: list[Step], current: Any, root: Any) -> Iterator[Any]:
    values: list[Any] = [root if steps[:1] == [_root] else current]
    for step in steps:
        values = [found for value in values for found in step(value)]
    yield from values


def _render(nodes: list[_Node], current: Any, root: Any) -> Iterator[str]:
    for node in nodes:
        if node.text is not None:
            yield node.text
        elif node.is_range and node.path is not None:
            for item in _evaluate(node.path, current, root):
                yield from _render(node.body, item, root)
        elif node.path is not None:
            yield " ".join(text(value) for value in _evaluate(node.path, current, root))


def text(value: Any) -> str:
    """A value as client-go's jsonpath prints it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def custom_columns(spec: str) -> list[tuple[str, Template]]:
    """``NAME:.metadata.name,IMAGE:.spec.containers[*].image`` → headers and templates."""
    columns: list[tuple[str, Template]] = []
    for part in spec.split(","):
        header, sep, expression = part.partition(":")
        if not sep or not header or not expression:
            raise Invalid("custom-columns format specified, but no custom columns given"
                          if not spec else f"unexpected custom-columns spec: {part}, "
                          "expected <header>:<json-path-expr>")
        columns.append((header, Template(_relaxed(expression))))
    return columns


def _relaxed(expression: str) -> str:
    """kubectl's RelaxedJSONPathExpression: ``.a.b``, ``a.b`` and ``{.a.b}`` are one."""
    inner = expression.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    if not inner.startswith((".", "@", "$", "[")):
        inner = "." + inner
    return "{" + inner + "}"
