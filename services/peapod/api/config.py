"""ConfigMap and Secret, as Kubernetes' core/v1 defines them: data a pod reads.

Both are namespaced. A ConfigMap holds UTF-8 ``data`` and base64
``binaryData``; a Secret holds base64 ``data``, and ``stringData`` (plain
text that the apiserver merges into ``data`` on write, as Kubernetes does;
it is never stored). Base64 is checked as Go's ``encoding/json`` decodes a
``[]byte`` field, and a bad value is refused in Kubernetes' words (``Secret
in version "v1" cannot be handled as a Secret: illegal base64 data at input
byte 4``). Keys follow Kubernetes' config-key rule, the total size is at
most 1 MiB, and ``immutable: true`` freezes the data (and the flag) for good.

A Secret's value never appears in an error: where Kubernetes would quote it,
it says ``<secret contents redacted>``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Literal

from peapod.api.base import Model
from peapod.api.meta import ObjectMeta

MAX_SIZE = 1024 * 1024  # Kubernetes' MaxSecretSize and the ConfigMap limit: 1 MiB
REDACTED = "<secret contents redacted>"
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# type -> keys Kubernetes requires in data (ValidateSecret)
SECRET_TYPES_REQUIRED: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


class ConfigMap(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None

    def keys(self) -> list[str]:
        return sorted({*(self.data or {}), *(self.binary_data or {})})

    def contents(self) -> dict[str, bytes]:
        """Every key's bytes: ``data`` as UTF-8, ``binaryData`` decoded."""
        out = {k: v.encode() for k, v in (self.data or {}).items()}
        out.update({k: decode_b64(v) for k, v in (self.binary_data or {}).items()})
        return out


class Secret(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    type: str | None = None
    immutable: bool | None = None

    def contents(self) -> dict[str, bytes]:
        """Every key's bytes, ``stringData`` over ``data`` (the apiserver merges them)."""
        out = {k: decode_b64(v) for k, v in (self.data or {}).items()}
        out.update({k: v.encode() for k, v in (self.string_data or {}).items()})
        return out


def decode_b64(value: str) -> bytes:
    """Go's ``base64.StdEncoding``, as ``encoding/json`` decodes a ``[]byte`` field.

    Raises ValueError with Go's words, ``illegal base64 data at input byte N``.
    """
    out = bytearray()
    at = 0
    while True:
        at, chunk = _quantum(value, at)
        if chunk is None:
            return bytes(out)
        out.extend(chunk)


def encode_b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def base64_error(value: str) -> str | None:
    """Go's ``illegal base64 data at input byte N`` for ``value``, or None if it decodes."""
    try:
        decode_b64(value)
    except ValueError as exc:
        return str(exc)
    return None


def _corrupt(at: int) -> ValueError:
    return ValueError(f"illegal base64 data at input byte {at}")


def _skip_newlines(src: str, at: int) -> int:
    while at < len(src) and src[at] in "\r\n":
        at += 1
    return at


def _quantum(src: str, at: int) -> tuple[int, bytes | None]:
    """One 4-character quantum from ``at``, as Go's ``decodeQuantum`` reads it (CR and LF
    skipped); ``(next, None)`` at the clean end of the input."""
    digits: list[int] = []
    while len(digits) < 4:
        if at == len(src):
            if not digits:
                return at, None
            raise _corrupt(at - len(digits))
        char = src[at]
        at += 1
        if char in _ALPHABET:
            digits.append(_ALPHABET.index(char))
            continue
        if char in "\r\n":
            continue
        if char != "=" or len(digits) < 2:
            raise _corrupt(at - 1)
        if len(digits) == 2:  # "==" expected, the first is read
            at = _skip_newlines(src, at)
            if at == len(src):
                raise _corrupt(len(src))
            if src[at] != "=":
                raise _corrupt(at - 1)
            at += 1
        at = _skip_newlines(src, at)
        if at < len(src):
            raise _corrupt(at)  # trailing garbage
        break
    value = 0
    for digit in digits:
        value = value << 6 | digit
    value <<= 6 * (4 - len(digits))
    raw = value.to_bytes(3, "big")[:len(digits) - 1]
    return (len(src) if len(digits) < 4 else at), raw


def undecodable(obj: ConfigMap | Secret) -> str | None:
    """Kubernetes' decoding error for base64 that does not decode (a 400 before validation)."""
    values = obj.binary_data if isinstance(obj, ConfigMap) else obj.data
    for value in (values or {}).values():
        if error := base64_error(value):
            return f'{obj.kind} in version "v1" cannot be handled as a {obj.kind}: {error}'
    return None


def config_key_problems(path: str, key: str) -> list[str]:
    """Kubernetes' IsConfigMapKey, in its words."""
    problems = []
    if len(key) > 253:
        problems.append(f'{path}: Invalid value: "{key}": must be no more than 253 characters')
    if not _CONFIG_KEY.match(key):
        problems.append(
            f'{path}: Invalid value: "{key}": a valid config key must consist of alphanumeric '
            "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
            "regex used for validation is '[-._a-zA-Z0-9]+')")
    if key in (".", ".."):
        problems.append(f'{path}: Invalid value: "{key}": must not be \'{key}\'')
    elif key.startswith(".."):
        problems.append(f'{path}: Invalid value: "{key}": must not start with \'..\'')
    return problems


def configmap_problems(cm: ConfigMap) -> list[str]:
    problems: list[str] = []
    total = 0
    for key, value in (cm.data or {}).items():
        problems.extend(config_key_problems(f"data[{key}]", key))
        total += len(key) + len(value.encode())
    for key, value in (cm.binary_data or {}).items():
        problems.extend(config_key_problems(f"binaryData[{key}]", key))
        if key in (cm.data or {}):
            problems.append(f'data[{key}]: Invalid value: "{key}": duplicate of key present '
                            "in binaryData")
        total += len(key) + len(decode_b64(value))
    if total > MAX_SIZE:
        problems.append(f"[]: Too long: must have at most {MAX_SIZE} bytes")
    return problems


def secret_problems(secret: Secret) -> list[str]:
    problems: list[str] = []
    contents = secret.contents()
    for section, values in (("data", secret.data), ("stringData", secret.string_data)):
        for key in values or {}:
            problems.extend(config_key_problems(f"{section}[{key}]", key))
    if sum(len(v) for v in contents.values()) > MAX_SIZE:
        problems.append(f"data: Too long: must have at most {MAX_SIZE} bytes")
    kind = secret.type or "Opaque"
    for key in SECRET_TYPES_REQUIRED.get(kind, ()):
        if key not in contents:
            problems.append(f"data[{key}]: Required value")
    for key in (".dockerconfigjson", ".dockercfg"):
        if kind.endswith("dockerconfigjson" if key == ".dockerconfigjson" else "dockercfg") \
                and key in contents and not _json_object(contents[key]):
            problems.append(f'data[{key}]: Invalid value: "{REDACTED}": must be a JSON object')
    if kind == "kubernetes.io/basic-auth" and not {"username", "password"} & set(contents):
        problems.append("data[username]: Required value: one of username or password is required")
    if kind == "kubernetes.io/service-account-token":
        problems.append('type: Unsupported value: "kubernetes.io/service-account-token": peapod '
                        "has no service accounts to issue tokens for")
    return problems


def _json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, UnicodeDecodeError):
        return False


class KeyToPath(Model):
    key: str
    path: str
    mode: int | None = None
