"""The base every wire model shares: Kubernetes' JSON shape from Python names.

Attributes are snake_case and serialise as camelCase (``restart_policy`` ↔
``restartPolicy``); ``extra="forbid"`` makes an unknown field an error that
names its path, which is how a user learns that peapod does not support a
field rather than having it silently ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
        defer_build=True,  # validators built on first use: a kubelet uses few of the models
        strict=True,  # JSON types as Kubernetes reads them: "5" is not 5, 1 is not true
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as Kubernetes would print it in JSON."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def check_dns1123_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise ValueError(
            f"invalid name {value!r}: a lowercase RFC 1123 label must consist of lower case "
            "alphanumeric characters or '-', start and end with an alphanumeric character, "
            "and be at most 63 characters"
        )
    return value


def check_dns1123_subdomain(value: str) -> str:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"invalid name {value!r}: a lowercase RFC 1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', must start and end with an alphanumeric "
            "character, and be at most 253 characters"
        )
    return value


def now_rfc3339() -> str:
    """Kubernetes' timestamp format: UTC, seconds, trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
