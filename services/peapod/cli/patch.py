"""``peapod patch pod NAME --subresource resize -p PATCH``: kubectl's in-place resize.

Only the ``resize`` subresource of a pod is patched here (Kubernetes 1.33's way to change a
running pod's cpu and memory); any other patch is refused, naming what peapod lacks. The
patch is a strategic merge patch, JSON or YAML, as kubectl takes it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import yaml

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.cli.client import Client
from peapod.errors import Invalid


def _patch_document(text: str) -> Any:
    try:
        return yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise Invalid(f"unable to parse the patch {text!r}: {exc}") from None


async def cmd_patch(client: Client, args: argparse.Namespace) -> int:
    kind, _, name = args.resource.partition("/")
    name = name or args.name
    if kind not in ("pod", "pods", "po"):
        raise Invalid(f'peapod patches only the resize subresource of pods, not "{kind}"')
    if args.subresource != "resize":
        raise Invalid("peapod patches a pod only through --subresource resize (a pod's other "
                      "fields cannot be changed in place)")
    if args.type not in ("strategic", "merge"):
        raise Invalid(f"--type {args.type}: peapod takes strategic or merge patches")
    if not name:
        raise Invalid("resource(s) were provided, but no name was specified")
    patch = _patch_document(args.patch)
    before = await client.get_pod(name)
    after = await request(client.nc, s.api("pods", "resize"), {
        "namespace": client.namespace, "name": name, "patch": patch})
    changed = json.dumps(after.get("spec"), sort_keys=True) != \
        json.dumps(before.to_wire().get("spec"), sort_keys=True)
    print(f"pod/{name} patched" + ("" if changed else " (no change)"))
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("patch", "resize a pod's cpu and memory in place: patch pod NAME --subresource "
            "resize -p PATCH", cmd_patch)
    p.add_argument("resource", metavar="TYPE[/NAME]")
    p.add_argument("name", nargs="?")
    p.add_argument("-p", "--patch", required=True, help="the patch, JSON or YAML")
    p.add_argument("--subresource", help="resize (the only one peapod patches)")
    p.add_argument("--type", default="strategic", help="strategic (default) or merge")
