"""kubectl's generators: ``create configmap`` and ``create secret generic`` from literals and files.

``--from-literal=key=value`` (quotes around the value trimmed, as kubectl
does), ``--from-file=[key=]path`` (the key defaults to the file's name; a
directory adds each regular file in it). A ConfigMap keeps UTF-8 content in
``data`` and anything else in ``binaryData``; a Secret base64-encodes all.
Errors are kubectl's. Nothing is read from a file more than once, and a
value never appears in an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peapod.api.config import config_key_problems, encode_b64
from peapod.errors import Invalid


def parse_literal(source: str) -> tuple[str, str]:
    key, sep, value = source.partition("=")
    if not sep:
        raise Invalid(f"invalid literal source {source}, expected key=value")
    return key, value.strip("\"'")


def parse_file_source(source: str) -> tuple[str, str]:
    """kubectl's ParseFileSource: ``path`` or ``key=path``."""
    count = source.count("=")
    if count == 0:
        return Path(source).name, source
    if count > 1:
        raise Invalid("key names or file paths cannot contain '='")
    key, path = source.split("=")
    if not key:
        raise Invalid(f"key name for file path {path} missing")
    if not path:
        raise Invalid(f"file path for key name {key} missing")
    return key, path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Invalid(f"error reading {path}: no such file or directory") from None
    except OSError as exc:
        raise Invalid(f"error reading {path}: {(exc.strerror or str(exc)).lower()}") from None


def file_entries(source: str) -> list[tuple[str, bytes]]:
    key, path_text = parse_file_source(source)
    path = Path(path_text)
    if not path.is_dir():
        return [(key, _read(path))]
    if "=" in source:
        raise Invalid("cannot give a key name for a directory path.")
    return [(item.name, _read(item)) for item in sorted(path.iterdir()) if item.is_file()]


def _entries(literals: list[str], files: list[str]) -> list[tuple[str, bytes]]:
    entries = [(k, v.encode()) for k, v in map(parse_literal, literals)]
    for source in files:
        entries.extend(file_entries(source))
    return entries


def _check_key(key: str, kind: str) -> None:
    if problems := config_key_problems("key", key):
        reason = problems[0].split(": ", 2)[-1]
        raise Invalid(f'"{key}" is not a valid key name for a {kind}: {reason}')


def configmap(name: str, *, literals: list[str], files: list[str]) -> dict[str, Any]:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, raw in _entries(literals, files):
        _check_key(key, "ConfigMap")
        if key in data or key in binary:
            raise Invalid(f'cannot add key "{key}", another key by that name already exists in '
                          f'{"Data" if key in data else "BinaryData"} for ConfigMap "{name}"')
        try:
            data[key] = raw.decode()
        except UnicodeDecodeError:
            binary[key] = encode_b64(raw)
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    if data:
        doc["data"] = data
    if binary:
        doc["binaryData"] = binary
    return doc


def secret(name: str, *, literals: list[str], files: list[str],
           type_: str | None = None) -> dict[str, Any]:
    data: dict[str, str] = {}
    for key, raw in _entries(literals, files):
        _check_key(key, "Secret")
        if key in data:
            raise Invalid(f'cannot add key "{key}", another key by that name already exists in '
                          f'Data for Secret "{name}"')
        data[key] = encode_b64(raw)
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "type": type_ or "Opaque"}
    if data:
        doc["data"] = data
    return doc


def generate(what: list[str], *, literals: list[str], files: list[str],
             type_: str | None) -> dict[str, Any]:
    """``create configmap NAME …`` or ``create secret generic NAME …``."""
    kind, rest = what[0].lower(), what[1:]
    if kind in ("secret", "secrets"):
        if not rest or rest[0] != "generic":
            sub = rest[0] if rest else ""
            raise Invalid(f'unknown command "{sub}" for "peapod create secret": peapod creates '
                          "secret generic NAME [--type=TYPE] [--from-literal] [--from-file]")
        rest = rest[1:]
    if len(rest) != 1:
        raise Invalid(f"exactly one NAME is required, got {len(rest)}")
    if kind in ("configmap", "configmaps", "cm"):
        if type_:
            raise Invalid("unknown flag: --type")
        return configmap(rest[0], literals=literals, files=files)
    return secret(rest[0], literals=literals, files=files, type_=type_)
