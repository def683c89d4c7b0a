"""``scale``, ``set image`` and ``rollout status|history|undo|restart``: kubectl's workload verbs.

Each change is read, modified and written back at the ``resourceVersion``
it was read at, again on a conflict (the controllers write status
meanwhile), as kubectl's ``scale`` and ``set`` do. Messages are kubectl's
(``deployment.apps/web scaled``); ``rollout status`` prints kubectl's
progress lines, each once, until the rollout is complete.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from peapod.api import now_rfc3339
from peapod.api.apps import Deployment, ReplicaSet
from peapod.cli.client import Client
from peapod.errors import Conflict, Invalid, NotFound, Unavailable

SCALABLE = {"deployment": "deployments", "deployments": "deployments", "deploy": "deployments",
            "replicaset": "replicasets", "replicasets": "replicasets", "rs": "replicasets"}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_CONFLICT_RETRIES = 10


def _target(args: argparse.Namespace, *, only_deployments: bool = False) -> tuple[str, str]:
    """``deployment/web`` or ``deployment web`` → (resource, name)."""
    words = [args.resource, *([args.name] if getattr(args, "name", None) else [])]
    kind, _, name = words[0].partition("/")
    name = name or (words[1] if len(words) > 1 else "")
    resource = SCALABLE.get(kind.lower())
    if resource is None or (only_deployments and resource != "deployments"):
        what = "rolls out deployments" if only_deployments else "scales deployments and replicasets"
        raise Invalid(f'no {"rollout" if only_deployments else "scale"} support for "{kind}": '
                      f"peapod {what}")
    if not name:
        raise Invalid("resource(s) were provided, but no name was specified")
    return resource, name


def _shown(resource: str, name: str) -> str:
    return f"{resource[:-1]}.apps/{name}"


async def modify(client: Client, resource: str, name: str, change: Callable[[Any], bool]) -> bool:
    """Read, ``change`` (False: nothing to write), write at that version; again on a conflict."""
    for _ in range(_CONFLICT_RETRIES):
        obj = await client.get_object(resource, name)
        if not change(obj):
            return False
        try:
            await client.update_object(resource, obj.to_wire())
        except Conflict:
            continue
        return True
    raise Conflict(f'{resource}.apps "{name}": too many concurrent updates, try again')


async def cmd_scale(client: Client, args: argparse.Namespace) -> int:
    resource, name = _target(args)
    if args.replicas is None or args.replicas < 0:
        raise Invalid("--replicas=COUNT is required, and COUNT must be >= 0")

    def scale(obj: Any) -> bool:
        if args.current_replicas is not None and obj.spec.replicas != args.current_replicas:
            raise Conflict(f"Expected replicas to be {args.current_replicas}, was "
                           f"{obj.spec.replicas}")
        obj.spec.replicas = args.replicas
        return True
    await modify(client, resource, name, scale)
    print(f"{_shown(resource, name)} scaled")
    return 0


async def cmd_set_image(client: Client, args: argparse.Namespace) -> int:
    if args.what != "image":
        raise Invalid(f'unknown command "{args.what}" for "peapod set": peapod sets images only')
    resource, name = _target(args)
    pairs = {}
    for pair in args.images:
        container, sep, image = pair.partition("=")
        if not sep or not container or not image:
            raise Invalid(f"invalid image update {pair!r}: expected CONTAINER=IMAGE")
        pairs[container] = image

    def set_images(obj: Any) -> bool:
        containers = {c.name: c for c in obj.spec.template.spec.containers}
        for container, image in pairs.items():
            if container == "*":
                for c in containers.values():
                    c.image = image
            elif container not in containers:
                raise Invalid(f'unable to find container named "{container}"')
            else:
                containers[container].image = image
        return True
    await modify(client, resource, name, set_images)
    print(f"{_shown(resource, name)} image updated")
    return 0


async def cmd_rollout(client: Client, args: argparse.Namespace) -> int:
    _, name = _target(args, only_deployments=True)
    verbs = {"status": _status, "history": _history, "undo": _undo, "restart": _restart}
    return await verbs[args.rollout_verb](client, name, args)


async def _restart(client: Client, name: str, args: argparse.Namespace) -> int:
    def restart(deploy: Deployment) -> bool:
        meta = deploy.spec.template.metadata
        meta.annotations = {**(meta.annotations or {}), RESTARTED_AT: now_rfc3339()}
        return True
    await modify(client, "deployments", name, restart)
    print(f"deployment.apps/{name} restarted")
    return 0


async def _history_of(client: Client, name: str) -> tuple[Deployment, dict[int, ReplicaSet]]:
    from peapod.cli.rollout_view import revisions
    deploy = await client.get_object("deployments", name)
    return deploy, revisions(deploy, await client.list_objects("replicasets"))


async def _history(client: Client, name: str, args: argparse.Namespace) -> int:
    from peapod.cli.rollout_view import history_table, revision_detail
    _, history = await _history_of(client, name)
    if args.revision and args.revision not in history:
        raise Invalid(f"unable to find the specified revision {args.revision}")
    print(revision_detail(name, args.revision, history[args.revision]) if args.revision
          else history_table(name, history))
    return 0


async def _undo(client: Client, name: str, args: argparse.Namespace) -> int:
    from peapod.cli.rollout_view import template_of
    deploy, history = await _history_of(client, name)
    if args.to_revision and args.to_revision not in history:
        raise Invalid(f"unable to find specified revision {args.to_revision} in history")
    if args.to_revision:
        revision = args.to_revision
    else:
        previous = sorted(history)[:-1]
        if not previous:
            raise Invalid(f'no rollout history found for deployment "{name}"')
        revision = previous[-1]
    template = template_of(history[revision])
    if template.to_wire() == deploy.spec.template.to_wire():
        print(f"deployment.apps/{name} skipped rollback (current template already matches "
              f"revision {revision})")
        return 0

    def roll_back(obj: Deployment) -> bool:
        obj.spec.template = template.model_copy(deep=True)
        return True
    await modify(client, "deployments", name, roll_back)
    print(f"deployment.apps/{name} rolled back")
    return 0


async def _status(client: Client, name: str, args: argparse.Namespace) -> int:
    from peapod.cli.rollout_view import rollout_message
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else None
    last = None
    while True:
        try:
            deploy = await client.get_object("deployments", name)
        except NotFound:
            raise NotFound(f'deployments.apps "{name}" not found') from None
        message, done = rollout_message(deploy)
        if message != last:
            print(message, flush=True)
            last = message
        if done:
            return 0
        if not args.watch:
            return 0
        if deadline is not None and loop.time() > deadline:
            raise Unavailable("timed out waiting for the condition")
        await asyncio.sleep(0.5)


def _duration(text: str) -> float:
    """kubectl's durations as ``--timeout`` takes them: ``90``, ``30s``, ``5m``, ``1h``."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use 30s, 5m or 1h") from None


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The verbs on ``peapod``'s parser (``add`` is main's helper)."""
    p = add("scale", "set the replicas of a deployment or replicaset", cmd_scale)
    p.add_argument("resource", metavar="TYPE/NAME")
    p.add_argument("name", nargs="?")
    p.add_argument("--replicas", type=int)
    p.add_argument("--current-replicas", type=int, default=None,
                   help="only if the current replicas are this many")
    p = add("set", "set a field: set image deployment/NAME CONTAINER=IMAGE ...", cmd_set_image)
    p.add_argument("what", choices=["image"])
    p.add_argument("resource", metavar="TYPE/NAME")
    p.add_argument("images", nargs="+", metavar="CONTAINER=IMAGE")
    p = add("rollout", "manage a deployment's rollout: status, history, undo, restart",
            cmd_rollout)
    p.add_argument("rollout_verb", choices=["status", "history", "undo", "restart"])
    p.add_argument("resource", metavar="deployment/NAME")
    p.add_argument("name", nargs="?")
    p.add_argument("--revision", type=int, default=0, help="history: details of one revision")
    p.add_argument("--to-revision", type=int, default=0, help="undo: the revision to go back to")
    p.add_argument("-w", "--watch", default=True, type=lambda v: v.lower() != "false",
                   help="status: wait until the rollout finishes (default true)")
    p.add_argument("--timeout", type=_duration, default=0,
                   help="status: give up after this long (30s, 5m; default: never)")
