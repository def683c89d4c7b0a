"""A pod's ``imagePullSecrets`` as podman's registry auth for one pull.

Kubernetes' keyring, in short: each ``kubernetes.io/dockerconfigjson``
(``.dockerconfigjson``: ``{"auths": {registry: entry}}``) or
``kubernetes.io/dockercfg`` (``.dockercfg``: ``{registry: entry}``) Secret
the pod names gives registry entries (``username``/``password``, or
``auth`` = base64 ``user:password``). An entry's key matches an image when
its host matches the image's registry (``*`` globs a host label, a port must
be equal, ``index.docker.io`` is ``docker.io``) and its path, if any, is a
prefix of the image's repository. The kubelet tries the matching entries,
the most specific key first, until a pull succeeds; with none it pulls
anonymously. Each try hands podman one entry as ``X-Registry-Auth``. The
credentials live only in memory for the pull: never logged, never in an
event or an error.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from peapod.api import Secret

DOCKER_CONFIG_JSON = ("kubernetes.io/dockerconfigjson", ".dockerconfigjson")
DOCKER_CFG = ("kubernetes.io/dockercfg", ".dockercfg")
DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class RegistryAuth:
    """One registry entry; its repr never shows the secret parts."""

    key: str
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def header(self, server: str) -> str:
        """podman's ``X-Registry-Auth``: base64url of Docker's AuthConfig JSON."""
        body: dict[str, str] = {"serveraddress": server}
        if self.identity_token:
            body["identitytoken"] = self.identity_token
        else:
            body.update(username=self.username, password=self.password)
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def entries(secret: Secret) -> list[RegistryAuth]:
    """The registry entries of a docker config Secret; [] for any other Secret or bad JSON
    (the apiserver checks these types' contents when they are written)."""
    contents = secret.contents()
    try:
        if secret.type == DOCKER_CONFIG_JSON[0] and DOCKER_CONFIG_JSON[1] in contents:
            auths = json.loads(contents[DOCKER_CONFIG_JSON[1]]).get("auths") or {}
        elif secret.type == DOCKER_CFG[0] and DOCKER_CFG[1] in contents:
            auths = json.loads(contents[DOCKER_CFG[1]])
        else:
            return []
    except (ValueError, AttributeError):
        return []
    if not isinstance(auths, dict):
        return []
    return [auth for key, entry in auths.items()
            if isinstance(entry, dict) and (auth := _entry(str(key), entry)) is not None]


def _entry(key: str, entry: dict[str, Any]) -> RegistryAuth | None:
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth") and not (username or password):
        try:
            username, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
    token = str(entry.get("identitytoken") or "")
    if not (username or password or token):
        return None
    return RegistryAuth(key=key, username=username, password=password, identity_token=token)


def _split(reference: str) -> tuple[str, str]:
    """``(host[:port], path)`` of a registry key or an image reference, scheme dropped."""
    for scheme in ("https://", "http://"):
        if reference.startswith(scheme):
            reference = reference[len(scheme):]
    host, _, path = reference.partition("/")
    host = host.lower()
    if host in _HUB_ALIASES:
        host, path = DOCKER_HUB, "" if path in ("v1", "v1/", "v2", "v2/") else path
    return host, path.rstrip("/")


def _host_matches(pattern: str, host: str) -> bool:
    (p_name, _, p_port), (h_name, _, h_port) = pattern.partition(":"), host.partition(":")
    p_labels, h_labels = p_name.split("."), h_name.split(".")
    return p_port == h_port and len(p_labels) == len(h_labels) and all(
        fnmatch.fnmatchcase(label, glob) for glob, label in zip(p_labels, h_labels, strict=True))


def matching(image: str, auths: Iterable[RegistryAuth]) -> list[RegistryAuth]:
    """The entries that apply to ``image`` (a normalized reference), most specific key first."""
    head, _, last = image.split("@", 1)[0].rpartition("/")
    host, repository = _split(f"{head}/{last.split(':', 1)[0]}")  # no tag, no digest
    found = []
    for auth in auths:
        key_host, key_path = _split(auth.key)
        if _host_matches(key_host, host) and (
                not key_path or repository == key_path or repository.startswith(key_path + "/")):
            found.append(auth)
    return sorted(found, key=lambda a: _split(a.key), reverse=True)


def registry_of(image: str) -> str:
    """The registry host (with port) of a normalized image reference."""
    return image.split("/", 1)[0]
