"""kubectl's generators: ``create configmap``, ``create secret generic|docker-registry|tls``.

``--from-literal=key=value`` (quotes around the value trimmed, as kubectl
does), ``--from-file=[key=]path`` (the key defaults to the file's name; a
directory adds each regular file in it). A ConfigMap keeps UTF-8 content in
``data`` and anything else in ``binaryData``; a Secret base64-encodes all.
Errors are kubectl's. Nothing is read from a file more than once, and a
value never appears in an error.
"""

from __future__ import annotations

import json
import ssl
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


DOCKER_HUB = "https://index.docker.io/v1/"  # kubectl's default --docker-server
# each generator's flags (argparse names); any other flag given is refused
FLAGS = {
    "configmap": ("from_literal", "from_file"),
    "generic": ("from_literal", "from_file", "type"),
    "docker-registry": ("from_file", "docker_server", "docker_username", "docker_password",
                        "docker_email"),
    "tls": ("cert", "key"),
    "cronjob": ("image", "schedule", "restart"),
    "job": ("image", "from"),
    "priorityclass": ("value", "global_default", "preemption_policy", "description"),
}


def priority_class(names: list[str], args: Any) -> dict[str, Any]:
    """kubectl's ``create priorityclass NAME --value=N [--global-default]
    [--preemption-policy=P] [--description=D]``."""
    refuse_flags(args, allowed=FLAGS["priorityclass"])
    if len(names) != 1:
        raise Invalid(f"exactly one NAME is required, got {len(names)}")
    try:
        value = int(args.value or "0")
    except ValueError:
        raise Invalid(f'invalid argument "{args.value}" for "--value" flag: strconv.ParseInt: '
                      f'parsing "{args.value}": invalid syntax') from None
    default = (args.global_default or "false").lower()
    if default not in ("true", "false"):
        raise Invalid(f'invalid argument "{args.global_default}" for "--global-default" flag: '
                      f'strconv.ParseBool: parsing "{args.global_default}": invalid syntax')
    doc: dict[str, Any] = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                           "metadata": {"name": names[0]}, "value": value,
                           "globalDefault": default == "true",
                           "preemptionPolicy": args.preemption_policy or "PreemptLowerPriority"}
    if args.description:
        doc["description"] = args.description
    return doc


def docker_registry(name: str, *, server: str | None, username: str | None,
                    password: str | None, email: str | None, files: list[str]) -> dict[str, Any]:
    """kubectl's ``create secret docker-registry``: a ``.dockerconfigjson`` for one server."""
    if files:
        return secret(name, literals=[], files=files, type_="kubernetes.io/dockerconfigjson")
    if not (username and password):
        raise Invalid("either --from-file or the combination of --docker-username, "
                      "--docker-password and --docker-server is required")
    entry = {"username": username, "password": password, **({"email": email} if email else {}),
             "auth": encode_b64(f"{username}:{password}".encode())}
    config = json.dumps({"auths": {server or DOCKER_HUB: entry}}, separators=(",", ":"))
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": encode_b64(config.encode())}}


def tls(name: str, *, cert: str | None, key: str | None) -> dict[str, Any]:
    """kubectl's ``create secret tls``: the pair must load together, as kubectl checks it."""
    if not (cert and key):
        raise Invalid("key and cert must be specified")
    cert_pem, key_pem = _read(Path(cert)), _read(Path(key))
    try:
        ssl.create_default_context().load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise Invalid(f"failed to load key pair {getattr(exc, 'reason', None) or exc}") from None
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": encode_b64(cert_pem), "tls.key": encode_b64(key_pem)}}


def refuse_flags(args: Any, *, allowed: tuple[str, ...] = ()) -> None:
    """kubectl's ``unknown flag`` for a generator's flag given to another verb."""
    for flag in sorted({f for fs in FLAGS.values() for f in fs} - set(allowed)):
        if getattr(args, flag, None):
            raise Invalid(f"unknown flag: --{flag.replace('_', '-')}")


def generate(what: list[str], args: Any) -> dict[str, Any]:
    """``create configmap NAME``, ``create secret generic|docker-registry|tls NAME``, with the
    flags in ``args`` (argparse's namespace)."""
    kind, rest = what[0].lower(), what[1:]
    sub = "configmap"
    if kind in ("secret", "secrets"):
        sub = rest[0] if rest else ""
        if sub not in ("generic", "docker-registry", "tls"):
            raise Invalid(f'unknown command "{sub}" for "peapod create secret": peapod creates '
                          "secret generic|docker-registry|tls NAME")
        rest = rest[1:]
    if len(rest) != 1:
        raise Invalid(f"exactly one NAME is required, got {len(rest)}")
    refuse_flags(args, allowed=FLAGS[sub])
    name, literals, files = rest[0], args.from_literal or [], args.from_file or []
    if sub == "configmap":
        return configmap(name, literals=literals, files=files)
    if sub == "generic":
        return secret(name, literals=literals, files=files, type_=args.type)
    if sub == "docker-registry":
        return docker_registry(name, server=args.docker_server, username=args.docker_username,
                               password=args.docker_password, email=args.docker_email,
                               files=files)
    return tls(name, cert=args.cert, key=args.key)
