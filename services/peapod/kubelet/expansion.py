"""``$(VAR)`` expansion in command, args and env values, exactly as Kubernetes does it.

A port of Kubernetes' ``third_party/forked/golang/expansion``: ``$(NAME)``
becomes NAME's value when NAME is defined and stays as written when it is
not; ``$$`` is an escaped ``$``; any other ``$`` is left alone; there is no
nesting and no shell syntax (``${A}`` and ``$A`` pass through). The kubelet
expands each env value against the variables defined before it (so order of
definition matters), then command and args against the whole environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OPERATOR, OPENER, CLOSER = "$", "(", ")"


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """Kubernetes' MappingFuncFor: the first context that defines a name wins; an undefined
    name is written back as ``$(NAME)``."""
    def mapping(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"{OPERATOR}{OPENER}{name}{CLOSER}"
    return mapping


def expand(text: str, mapping: Callable[[str], str]) -> str:
    out: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_name(text[cursor + 1:])
            out.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _read_name(text: str) -> tuple[str, bool, int]:
    """What follows an operator: (text, is a variable name, characters consumed)."""
    if text[0] == OPERATOR:
        return OPERATOR, False, 1  # escaped operator
    if text[0] == OPENER:
        closer = text.find(CLOSER, 1)
        if closer != -1:
            return text[1:closer], True, closer + 1
        return OPERATOR + OPENER, False, 1  # incomplete reference
    return OPERATOR + text[0], False, 1  # an operator that starts no expression
