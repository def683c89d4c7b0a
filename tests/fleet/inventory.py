"""The Ansible inventory of a simulated fleet: how Ansible reaches each host over SSH.

Connection settings are variables of the group ``all``, so the roles' own
groups carry nothing but membership. Host keys are not checked: every host
makes new ones when it is created, and a fleet is re-created run after run at
the same addresses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


def ansible_inventory(addresses: Mapping[str, str], *, key_path: Path,
                      groups: Mapping[str, Sequence[str]] | None = None,
                      host_vars: Mapping[str, Mapping[str, Any]] | None = None,
                      all_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The inventory of these hosts (name to address) as Ansible's YAML inventory reads it;
    ``all_vars`` go to the ``all`` group (the implicit localhost reads them too)."""
    groups = groups or {}
    host_vars = host_vars or {}
    unknown = {h for members in groups.values() for h in members} | set(host_vars)
    if unknown - set(addresses):
        raise ValueError(f"not hosts of the fleet: {sorted(unknown - set(addresses))}")
    return {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key_path),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": "/usr/bin/python3",
            **(all_vars or {}),
        },
        "hosts": {host: {"ansible_host": ip, **host_vars.get(host, {})}
                  for host, ip in sorted(addresses.items())},
        "children": {group: {"hosts": {host: {} for host in members}}
                     for group, members in groups.items()},
    }}


def write_inventory(path: Path, inventory: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(inventory), sort_keys=False))
    return path
