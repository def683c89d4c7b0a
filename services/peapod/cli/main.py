"""``peapod``: a kubectl-shaped CLI for a peapod cluster.

Verbs, flags, tables and messages follow kubectl, so a Kubernetes user needs
no manual: ``apply -f``, ``get pods -o wide``, ``describe pod``, ``logs -f``,
``exec [-it] -- cmd``, ``attach``, ``delete``, and ``config get-contexts|use-context|set-…`` over a
kubeconfig-shaped file (``peapod.cli.context``). Every error is one line on
stderr and a non-zero exit: 1 for errors from the server or bad input, 2 for
usage errors, and ``exec`` exits with the command's own status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peapod.api import Container, Pod, load_documents, parse_object
from peapod.api.manifest import refuse_generate_name_for_apply
from peapod.api.selectors import parse_label_selector
from peapod.api.static import own_uids
from peapod.bus.client import CHUNK_SIZE
from peapod.bus.events import latest_events
from peapod.cli import interactive, printers
from peapod.cli.client import CLUSTER_SCOPED, Client
from peapod.cli.context import load_context, peapod_home, run_config_verb
from peapod.cli.parser import KubectlParser
from peapod.errors import Invalid, NotFound, PeapodError, Unavailable

RESOURCES = {"pods": "pods", "pod": "pods", "po": "pods",
             "nodes": "nodes", "node": "nodes", "no": "nodes",
             "namespaces": "namespaces", "namespace": "namespaces", "ns": "namespaces",
             "events": "events", "event": "events", "ev": "events",
             "replicasets": "replicasets", "replicaset": "replicasets", "rs": "replicasets",
             "deployments": "deployments", "deployment": "deployments", "deploy": "deployments",
             "daemonsets": "daemonsets", "daemonset": "daemonsets", "ds": "daemonsets",
             "jobs": "jobs", "job": "jobs",
             "cronjobs": "cronjobs", "cronjob": "cronjobs", "cj": "cronjobs",
             "configmaps": "configmaps", "configmap": "configmaps", "cm": "configmaps",
             "secrets": "secrets", "secret": "secrets",
             "persistentvolumes": "persistentvolumes", "persistentvolume": "persistentvolumes",
             "pv": "persistentvolumes",
             "persistentvolumeclaims": "persistentvolumeclaims",
             "persistentvolumeclaim": "persistentvolumeclaims", "pvc": "persistentvolumeclaims",
             "priorityclasses": "priorityclasses", "priorityclass": "priorityclasses",
             "pc": "priorityclasses"}
WORKLOADS = ("replicasets", "deployments", "daemonsets", "jobs",
             "cronjobs")  # served by generic verbs
GROUPS = {"jobs": "batch", "cronjobs": "batch"}  # every other workload: apps
CONFIGS = ("configmaps", "secrets")  # v1 kinds served by the same generic verbs
VOLUMES = ("persistentvolumes", "persistentvolumeclaims")  # v1, with finalizers and status
GENERIC = (*WORKLOADS, *CONFIGS, *VOLUMES, "priorityclasses")  # get/list/delete_object
CLUSTER_SCOPED_KINDS = ("Namespace", "PersistentVolume", "PriorityClass")
ALL = ("pods", "daemonsets", "deployments", "replicasets", "cronjobs",
       "jobs")  # `get all`, in kubectl's order
WRITABLE_KINDS = ("Pod", "Namespace", "ReplicaSet", "Deployment", "DaemonSet", "Job", "CronJob",
                  "ConfigMap", "Secret", "PersistentVolume",
                  "PersistentVolumeClaim", "PriorityClass")  # create, apply
KIND_RESOURCES = {"Namespace": "namespaces", "ReplicaSet": "replicasets",
                  "Deployment": "deployments", "DaemonSet": "daemonsets", "Job": "jobs",
                  "CronJob": "cronjobs", "ConfigMap": "configmaps",
                  "Secret": "secrets", "PersistentVolume": "persistentvolumes",
                  "PersistentVolumeClaim": "persistentvolumeclaims",
                  "PriorityClass": "priorityclasses"}  # else pods
CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan",
           "true": "Background", "false": "Orphan"}  # kubectl's --cascade values


def _now() -> datetime:
    return datetime.now(UTC)


def _resource(text: str) -> tuple[str, str | None]:
    kind, _, name = text.partition("/")
    resource = RESOURCES.get(kind.lower())
    if resource is None:
        raise Invalid(f'the server doesn\'t have a resource type "{kind}"')
    return resource, name or None


def _read_manifests(filename: str) -> list[dict[str, Any]]:
    if filename == "-":
        return load_documents(sys.stdin.read(), source="<stdin>")
    path = Path(filename)
    files = sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml", ".json")) \
        if path.is_dir() else [path]
    docs: list[dict[str, Any]] = []
    for file in files:
        try:
            text = file.read_text()
        except FileNotFoundError:
            raise Invalid(f'the path "{file}" does not exist') from None
        except OSError as exc:
            raise Invalid(f"{file}: {exc.strerror}") from None
        docs.extend(load_documents(text, source=str(file)))
    return docs


def _validated(docs: list[dict[str, Any]], *, verb: str,
               namespace: str | None = None) -> list[dict[str, Any]]:
    """Refuse the whole file before anything is sent if any object is invalid.

    ``namespace`` is the one given with ``-n``, if any: as kubectl, an object
    whose own namespace differs is refused; without ``-n``, the object's own
    namespace wins over the context's.
    """
    if not docs:
        raise Invalid("no objects passed to apply")
    problems: list[Invalid] = []
    for doc in docs:
        try:
            if verb == "apply":
                refuse_generate_name_for_apply(doc)
            obj = parse_object(doc)
        except Invalid as exc:
            problems.append(exc)
            continue
        if obj.kind not in WRITABLE_KINDS:
            kinds = [f"{kind}{'es' if kind.endswith('s') else 's'}" for kind in WRITABLE_KINDS]
            problems.append(Invalid(
                f"{obj.kind} {obj.metadata.name!r}: only {', '.join(kinds[:-1])} and "
                f"{kinds[-1]} can be applied (Nodes register themselves, Events are recorded "
                "by components)"))
        elif obj.kind not in CLUSTER_SCOPED_KINDS:
            _require_namespace(obj.metadata.namespace, namespace)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise Refused(problems)
    return docs


class Refused(Invalid):
    """Several objects of one file refused: kubectl's line for each, one after another."""

    def __init__(self, problems: list[Invalid]) -> None:
        super().__init__("\n".join(invalid_message(p) for p in problems))

    def line(self) -> str:
        return self.message


def _require_namespace(own: str | None, flag: str | None) -> None:
    """kubectl's RequireNamespace: ``-n`` that contradicts the object is the only conflict."""
    if own and flag and own != flag:
        raise Invalid(f'the namespace from the provided object "{own}" does not match the '
                      f'namespace "{flag}". You must pass \'--namespace={own}\' to perform this '
                      "operation.")


def _flag_namespace(args: argparse.Namespace) -> str | None:
    """The namespace given with -n on this command line, if any (not the context's)."""
    namespace: str | None = getattr(args, "sub_namespace", None) or args.namespace
    return namespace


async def cmd_apply(client: Client, args: argparse.Namespace) -> int:
    docs = _validated(_read_manifests(args.filename), verb="apply", namespace=_flag_namespace(args))
    for doc in docs:
        obj, action = await client.apply(doc)
        print(f"{_kind_name(obj['kind'])}/{obj['metadata']['name']} {action}")
    return 0


async def cmd_create(client: Client, args: argparse.Namespace) -> int:
    if args.filename and args.what:
        raise Invalid("give either -f FILE or a resource and its name, not both")
    if args.filename:
        docs = _validated(_read_manifests(args.filename), verb="create",
                          namespace=_flag_namespace(args))
    elif args.what and getattr(args, "from", None):
        docs = [await _job_from(client, args)]
    elif args.what:
        docs = [_named_object(args)]
    else:
        raise Invalid("must specify one of -f or a resource: peapod create namespace NAME")
    for doc in docs:
        obj = await client.create(doc)
        print(f"{_kind_name(obj['kind'])}/{obj['metadata']['name']} created")
    return 0


def _named_object(args: argparse.Namespace) -> dict[str, Any]:
    """kubectl's generators: ``create namespace|configmap NAME``, ``create secret generic NAME``."""
    from peapod.cli import generators
    from peapod.cli.cronjobs import generate_cronjob, generate_job

    what = args.what
    kind, names = what[0], what[1:]
    resource = RESOURCES.get(kind.lower())
    if resource in ("configmaps", "secrets"):
        doc = generators.generate(what, args)
        return _validated([doc], verb="create", namespace=_flag_namespace(args))[0]
    if resource == "priorityclasses":
        doc = generators.priority_class(names, args)
        return _validated([doc], verb="create")[0]
    if resource in ("cronjobs", "jobs"):
        generators.refuse_flags(args, allowed=generators.FLAGS[resource[:-1]])
        doc = generate_cronjob(names, args) if resource == "cronjobs" else generate_job(names, args)
        return _validated([doc], verb="create", namespace=_flag_namespace(args))[0]
    if resource != "namespaces":
        raise Invalid(f'unknown command "{kind}" for "peapod create": peapod creates a '
                      "namespace, configmap, secret, cronjob, job or priorityclass by name, "
                      "anything else from a file (-f)")
    generators.refuse_flags(args)
    if len(names) != 1:
        raise Invalid(f"exactly one NAME is required, got {len(names)}")
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": names[0]}}
    return _validated([doc], verb="create")[0]


async def _job_from(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """kubectl's ``create job NAME --from=cronjob/X``."""
    from peapod.cli import generators
    from peapod.cli.cronjobs import job_from_cronjob

    kind, names = args.what[0], args.what[1:]
    if RESOURCES.get(kind.lower()) != "jobs":
        raise Invalid("unknown flag: --from")
    generators.refuse_flags(args, allowed=generators.FLAGS["job"])
    if args.image:
        raise Invalid("--image and --from are mutually exclusive")
    if len(names) != 1:
        raise Invalid(f"exactly one NAME is required, got {len(names)}")
    source, _, source_name = getattr(args, "from").partition("/")
    if not source_name:
        raise Invalid("from must be of the form <resource>/<name>")
    if RESOURCES.get(source.lower()) != "cronjobs":
        raise Invalid(f"from must be an existing cronjob: {getattr(args, 'from')}")
    cj = await client.get_object("cronjobs", source_name)
    doc = job_from_cronjob(names[0], cj)
    return _validated([doc], verb="create", namespace=_flag_namespace(args))[0]


async def cmd_get(client: Client, args: argparse.Namespace) -> int:
    printers.check_output(args.output)  # a bad -o or template is refused before any request
    if "," in args.resource or args.resource.lower() == "all":
        return await _get_several(client, args)
    resource, name = _resource(args.resource)
    name = args.name or name
    if resource == "events" and args.watch:
        if name or args.output not in (None, "wide"):
            raise Invalid("watching events prints the table of all events: peapod events -f")
        await _follow_events(client, args.all_namespaces)  # same as `peapod events -f`
        return 0
    matches = parse_label_selector(args.selector)  # refuses a bad selector before anything
    client.chunk_size = args.chunk_size
    since = args.resource_version
    if since is not None and not args.watch:
        raise Invalid("--resource-version is for a watch (-w): the changes after that version")
    changes = (await client.watch(resource, all_namespaces=args.all_namespaces, since=since)
               if args.watch else None)  # subscribed before the list: nothing missed
    # from a resourceVersion: only the changes after it, no list first (a watch's resume)
    objs = [] if since is not None else await _fetch(client, resource, name, args)
    if not objs and args.output in (None, "wide") and not args.watch:
        cluster_wide = args.all_namespaces or resource in CLUSTER_SCOPED
        print(printers.no_resources_message(None if cluster_wide else client.namespace),
              file=sys.stderr)
    else:
        out = printers.render(objs, output=args.output, kind=resource, now=_now(),
                              all_namespaces=args.all_namespaces, single=bool(name),
                              show_labels=args.show_labels, no_headers=args.no_headers)
        if out:
            print(out, end=printers.line_end(args.output))
    if changes is not None:
        headers = not objs and args.output in (None, "wide") and not args.no_headers  # kubectl:
        # the first row brings them
        async for _kind, obj in changes:
            if (name and obj.metadata.name != name) or not matches(obj.metadata.labels or {}):
                continue
            print(printers.render([obj], output=args.output, kind=resource, now=_now(),
                                  all_namespaces=args.all_namespaces, no_headers=not headers,
                                  single=True, show_labels=args.show_labels),
                  end=printers.line_end(args.output), flush=True)
            headers = False

    return 0


async def _get_several(client: Client, args: argparse.Namespace) -> int:
    """``get deploy,rs`` and ``get all``: one table per kind, names as ``kind/name``."""
    words = ALL if args.resource.lower() == "all" else args.resource.split(",")
    resources = list(dict.fromkeys(_resource(word)[0] for word in words))
    if args.watch or args.name:
        raise Invalid("a name or --watch needs one resource type, not several")
    client.chunk_size = args.chunk_size
    found = [(r, await _fetch(client, r, None, args)) for r in resources]
    found = [(r, objs) for r, objs in found if objs]
    if args.output not in (None, "wide"):
        print(printers.render([o for _, objs in found for o in objs], output=args.output,
                              kind="", now=_now(), no_headers=args.no_headers),
              end=printers.line_end(args.output))
        return 0
    if not found:
        print(printers.no_resources_message(None if args.all_namespaces else client.namespace),
              file=sys.stderr)
        return 0
    tables = []
    for resource, objs in found:
        prefix = f"{_singular(resource)}/"
        named = [o.model_copy(update={"metadata": o.metadata.model_copy(
            update={"name": prefix + (o.metadata.name or "")})}) for o in objs]
        tables.append(printers.render(named, output=args.output, kind=resource, now=_now(),
                                      all_namespaces=args.all_namespaces,
                                      show_labels=args.show_labels, no_headers=args.no_headers))
    print("\n\n".join(tables))
    return 0


async def _fetch(client: Client, resource: str, name: str | None,
                 args: argparse.Namespace) -> list[Any]:
    """The object named, or those the selector matches (in the namespace, or all with -A)."""
    if resource == "pods":
        objs: list[Any] = ([await client.get_pod(name)] if name else
                           await client.list_pods(all_namespaces=args.all_namespaces,
                                                  selector=args.selector))
    elif resource == "namespaces":
        objs = [await client.get_namespace(name)] if name else await client.list_namespaces(
            selector=args.selector)
    elif resource == "nodes":
        objs = [await client.get_node(name)] if name else await client.list_nodes(
            selector=args.selector)
    elif resource in GENERIC:
        objs = [await client.get_object(resource, name)] if name else await client.list_objects(
            resource, all_namespaces=args.all_namespaces, selector=args.selector)
    else:
        objs = await client.list_events(all_namespaces=args.all_namespaces)
        if name:
            objs = [e for e in objs if e.metadata.name == name]
            if not objs:
                raise NotFound(f'events "{name}" not found')
    return objs


async def _follow_events(client: Client, all_namespaces: bool) -> None:
    """Print the stored events as one table once they are read, then each new one as a row."""
    backlog: list[Any] = []
    caught_up = False
    async for event, done in client.follow_events(all_namespaces=all_namespaces):
        if caught_up:
            print(printers.events_table([event], now=_now(), all_namespaces=all_namespaces,
                                        no_headers=True), flush=True)
            continue
        backlog.append(event)
        if done:
            caught_up = True
            print(printers.events_table(latest_events(backlog), now=_now(),
                                        all_namespaces=all_namespaces), flush=True)


async def cmd_events(client: Client, args: argparse.Namespace) -> int:
    if args.follow:
        await _follow_events(client, args.all_namespaces)
        return 0
    events = await client.list_events(all_namespaces=args.all_namespaces)
    if events:
        print(printers.events_table(events, now=_now(), all_namespaces=args.all_namespaces))
    else:
        print(printers.no_resources_message(None if args.all_namespaces else client.namespace),
              file=sys.stderr)
    return 0


async def cmd_describe(client: Client, args: argparse.Namespace) -> int:
    from peapod.cli import describe
    resource, name = _resource(args.resource)
    name = args.name or name
    if not name:
        raise Invalid("describe needs a name: peapod describe pod NAME")
    if resource == "pods":
        pod = await client.get_pod(name)
        events = [e for e in await client.list_events(kind="Pod", name=name)
                  if e.involved_object.uid in own_uids(pod)]
        print(describe.describe_pod(pod, events, now=_now()))
    elif resource == "nodes":
        node = await client.get_node(name)
        pods = await client.list_pods(all_namespaces=True, field_selector=f"spec.nodeName={name}")
        events = await client.list_events(kind="Node", name=name, namespace="default")
        print(describe.describe_node(node, pods, events, now=_now()))
    elif resource == "namespaces":
        print(describe.describe_namespace(await client.get_namespace(name)))
    elif resource == "replicasets":
        from peapod.cli.workloads import describe_replicaset
        rs = await client.get_object(resource, name)
        pods = [p for p in await client.list_pods()
                if (ref := p.metadata.controller_ref()) and ref.uid == rs.metadata.uid]
        events = [e for e in await client.list_events(kind="ReplicaSet", name=name)
                  if e.involved_object.uid in (None, rs.metadata.uid)]
        print(describe_replicaset(rs, pods, events, now=_now()))
    elif resource == "deployments":
        from peapod.cli.workloads import describe_deployment
        deploy = await client.get_object(resource, name)
        owned = [rs for rs in await client.list_objects("replicasets")
                 if (ref := rs.metadata.controller_ref()) and ref.uid == deploy.metadata.uid]
        events = [e for e in await client.list_events(kind="Deployment", name=name)
                  if e.involved_object.uid in (None, deploy.metadata.uid)]
        print(describe_deployment(deploy, owned, events, now=_now()))
    elif resource in ("daemonsets", "jobs"):
        from peapod.cli.workloads import describe_daemonset, describe_job
        obj = await client.get_object(resource, name)
        pods = [p for p in await client.list_pods()
                if (ref := p.metadata.controller_ref()) and ref.uid == obj.metadata.uid]
        events = [e for e in await client.list_events(kind=obj.kind, name=name)
                  if e.involved_object.uid in (None, obj.metadata.uid)]
        describer = describe_daemonset if resource == "daemonsets" else describe_job
        print(describer(obj, pods, events, now=_now()))
    elif resource == "cronjobs":
        from peapod.cli.cronjobs import describe_cronjob
        cj = await client.get_object(resource, name)
        events = [e for e in await client.list_events(kind="CronJob", name=name)
                  if e.involved_object.uid in (None, cj.metadata.uid)]
        print(describe_cronjob(cj, events, now=_now()))
    elif resource in CONFIGS:
        print(describe.describe_config(await client.get_object(resource, name), now=_now()))
    elif resource in VOLUMES:
        print(await _describe_volume(client, resource, name))
    elif resource == "priorityclasses":
        print(describe.describe_priority_class(await client.get_object(resource, name),
                                               now=_now()))
    else:
        raise Invalid("describe supports pods, deployments, replicasets, daemonsets, jobs, "
                      "cronjobs, nodes, namespaces, configmaps, secrets, persistentvolumes, "
                      "persistentvolumeclaims and priorityclasses")
    return 0


async def _describe_volume(client: Client, resource: str, name: str) -> str:
    from peapod.cli.storage import describe_pv, describe_pvc
    obj = await client.get_object(resource, name)
    if resource == "persistentvolumes":  # a cluster-scoped object's events are in "default"
        events = await client.list_events(kind=obj.kind, name=name, namespace="default")
        return describe_pv(obj, [e for e in events if e.involved_object.uid in
                                 (None, obj.metadata.uid)], now=_now())
    events = [e for e in await client.list_events(kind=obj.kind, name=name)
              if e.involved_object.uid in (None, obj.metadata.uid)]
    return describe_pvc(obj, await client.list_pods(), events, now=_now())


async def cmd_delete(client: Client, args: argparse.Namespace) -> int:
    targets: list[tuple[str, str, str | None]] = []
    if args.filename:
        for doc in _read_manifests(args.filename):
            meta = doc.get("metadata") or {}
            if not meta.get("name"):
                raise Invalid("resource name may not be empty")  # kubectl's (client-go's) words
            if doc.get("kind") in CLUSTER_SCOPED_KINDS:
                targets.append((KIND_RESOURCES[str(doc["kind"])], meta["name"], None))
                continue
            _require_namespace(meta.get("namespace"), _flag_namespace(args))
            targets.append((KIND_RESOURCES.get(str(doc.get("kind")), "pods"), meta["name"],
                            meta.get("namespace")))
    elif args.resource and "/" in args.resource:  # delete pod/a deploy/b …, as kubectl
        if args.selector:
            raise Invalid("name cannot be provided when a selector is specified")
        for word in [args.resource, *args.names]:
            resource, name = _resource(word) if "/" in word else ("", None)
            if not name:
                raise Invalid("arguments in resource/name form must have a single resource "
                              "and name")
            targets.append((resource, name, None))
    elif args.resource:
        resource, name = _resource(args.resource)
        names = ([name] if name else []) + list(args.names)
        if args.selector:
            if names:
                raise Invalid("name cannot be provided when a selector is specified")
            names = [o.metadata.name or "" for o in await _fetch(client, resource, None, args)]
            if not names:
                print(printers.no_resources_message(client.namespace), file=sys.stderr)
                return 0
        if not names:
            raise Invalid("resource(s) were provided, but no name was specified")
        targets.extend((resource, n, None) for n in names)
    else:
        raise Invalid("You must provide one or more resources by argument or filename.")
    grace = 0 if args.force else args.grace_period
    cascade = CASCADE.get(args.cascade.lower())
    if cascade is None:
        raise Invalid(f'invalid cascade value ({args.cascade}). Must be "background", '
                      '"foreground", or "orphan"')
    status = 0
    pending: list[tuple[str, str, str, str | None]] = []  # as kubectl: delete all, then wait
    went_with_namespace: set[tuple[str, str]] = set()  # pods a namespace deletion took along
    for resource, name, namespace in targets:
        try:
            if resource == "nodes":
                await client.delete_node(name)
                print(f'node "{name}" deleted')
                continue
            if resource == "namespaces":
                inside = await client.list_pods(namespace=name)
                result = await client.delete_namespace(name)
                went_with_namespace.update((name, pod.metadata.name or "") for pod in inside)
            elif resource == "pods":
                # --cascade is sent, not dropped: the server refuses all but Background for pods
                result = await client.delete_pod(name, namespace=namespace, grace=grace,
                                                 propagation=cascade)
            elif resource in WORKLOADS:
                result = await client.delete_object(resource, name, namespace=namespace,
                                                    propagation=cascade)
            elif resource in (*CONFIGS, *VOLUMES, "priorityclasses"):
                result = await client.delete_object(resource, name, namespace=namespace)
            else:
                raise Invalid(f"cannot delete {resource}")
            print(f'{_singular(resource)} "{name}" deleted', flush=True)
            if args.wait and not result["finished"]:
                pending.append((resource, name, result["object"]["metadata"]["uid"], namespace))
        except NotFound as exc:
            if resource == "pods" and (namespace or client.namespace, name) in went_with_namespace:
                print(f'pod "{name}" deleted', flush=True)  # its namespace's deletion took it
            elif not args.ignore_not_found:
                print(f"Error from server (NotFound): {exc.message}", file=sys.stderr)
                status = 1
    for resource, name, uid, namespace in pending:
        if resource == "namespaces":
            gone = await client.wait_namespace_deleted(name, uid)
        elif resource in (*WORKLOADS, *VOLUMES):
            gone = await client.wait_object_deleted(resource, name, uid, namespace=namespace)
        else:
            gone = await client.wait_deleted(name, uid, namespace=namespace)
        if not gone:
            raise Unavailable(f'timed out waiting for {_singular(resource)} "{name}" to be deleted')
    return status


def _kind_name(kind: str) -> str:
    """kubectl's name of a kind in ``created``/``configured`` lines: pod, deployment.apps."""
    return _singular(KIND_RESOURCES.get(kind, f"{kind.lower()}s"))


def _singular(resource: str) -> str:
    """kubectl's words in ``deleted`` lines: pod, namespace, replicaset.apps, job.batch."""
    if resource in WORKLOADS:
        return f"{resource[:-1]}.{GROUPS.get(resource, 'apps')}"
    if resource == "priorityclasses":
        return "priorityclass.scheduling.k8s.io"
    return resource[:-1]


POD_OWNERS = ("deployments", "replicasets", "daemonsets", "jobs")  # logs|exec|attach TYPE/NAME


async def _target_pod(client: Client, text: str, *, say_which: bool = False) -> Pod:
    """``POD``, ``pod/POD`` or, as kubectl, ``deploy|rs|ds|job/NAME``: one of its pods.

    Of a workload's pods, a running and ready one first, then the oldest, as kubectl's
    GetFirstPod; ``say_which`` prints kubectl's ``Found 2 pods, using pod/x`` (logs).
    """
    if "/" not in text:
        return await client.get_pod(text)
    resource, name = _resource(text)
    if not name:
        raise Invalid(f"arguments in resource/name form must have a single resource and name: {text}")
    if resource == "pods":
        return await client.get_pod(name)
    if resource not in POD_OWNERS:
        raise Invalid(f"cannot attach to {_singular(resource)}/{name}: not implemented")
    owner = await client.get_object(resource, name)
    selector = owner.spec.selector
    pods = [p for p in await client.list_pods()
            if (selector.matches(p.metadata.labels) if selector is not None else
                any(ref.uid == owner.metadata.uid for ref in p.metadata.owner_references or []))]
    if not pods:
        raise NotFound(f"no pods found for {_singular(resource)}/{name}")  # kubectl's GetFirstPod
    pods.sort(key=lambda p: (not _running_and_ready(p), p.metadata.creation_timestamp or "",
                             p.metadata.name or ""))
    if say_which and len(pods) > 1:
        print(f"Found {len(pods)} pods, using pod/{pods[0].metadata.name}", file=sys.stderr)
    return pods[0]


def _running_and_ready(pod: Pod) -> bool:
    status = pod.status
    return bool(status and status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in status.conditions or []))


async def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    pod = await _target_pod(client, args.pod, say_which=True)
    async for chunk in client.logs(pod, args.container, follow=args.follow, tail=args.tail,
                                   previous=args.previous):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    return 0


async def cmd_exec(client: Client, args: argparse.Namespace) -> int:
    command = args.command
    if not command:
        raise Invalid("you must specify at least one command for the container")
    pod = await _target_pod(client, args.pod)
    use_tty = args.tty and args.stdin  # as kubectl: -t without -i gives no terminal
    if use_tty and not interactive.stdin_is_terminal():
        print(interactive.NO_TTY, file=sys.stderr)
        use_tty = False
    if args.stdin:
        code = await interactive.run(client, "exec", pod, args.container, command=command,
                                     stdin=True, tty=use_tty) or 0
    else:
        code, out, err = await client.exec(pod, args.container, command)
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(err)
        sys.stderr.buffer.flush()
    if code != 0:
        print(f"command terminated with exit code {code}", file=sys.stderr)
    return code


async def cmd_attach(client: Client, args: argparse.Namespace) -> int:
    """kubectl attach: the container's main process, its stdin with -i, its terminal with -t."""
    pod = await _target_pod(client, args.pod)
    spec = _container_spec(pod, args.container)
    use_tty = args.tty and args.stdin
    if use_tty and not spec.tty:
        print(f"error: Unable to use a TTY - container {spec.name} did not allocate one",
              file=sys.stderr)
        use_tty = False
    elif use_tty and not interactive.stdin_is_terminal():
        print(interactive.NO_TTY, file=sys.stderr)
        use_tty = False
    if use_tty:
        print(interactive.ATTACH_PROMPT, file=sys.stderr)
    code = await interactive.run(client, "attach", pod, spec.name, command=None,
                                 stdin=args.stdin, tty=use_tty)
    return code or 0


def _container_spec(pod: Pod, name: str | None) -> Container:
    containers = [*pod.spec.containers, *(pod.spec.init_containers or [])]
    found = next((c for c in containers if c.name == name), None) if name else containers[0]
    if found is None:
        raise Invalid(f"container {name} not found in pod {pod.metadata.name}")
    return found


def cmd_up(args: argparse.Namespace) -> int:
    from peapod.cli.up import up
    return up(peapod_home(), detach=args.detach, node_name=args.node_name, port=args.port,
              extended_resources=args.extended_resources)


def cmd_down(args: argparse.Namespace) -> int:
    from peapod.cli.up import down
    return down(peapod_home())


def cmd_doctor(args: argparse.Namespace) -> int:
    from peapod.cli import doctor  # imported here, like describe and up: quicker start-up
    url = ca_file = problem = None
    try:
        context = load_context(args.selected_context)
        url, ca_file = context.server, context.ca_file
    except PeapodError as exc:
        problem = exc.message
    # the file `peapod up` gives the kubelet when CONTAINERS_CONF is unset
    conf = os.environ.get("CONTAINERS_CONF") or (
        str(doctor.SHIPPED_CONF) if doctor.SHIPPED_CONF.is_file() else None)
    results = doctor.run_checks(
        nats_url=url, ca_file=ca_file, no_cluster=problem,
        podman_socket=os.environ.get("PEAPOD_PODMAN_SOCKET", "/run/podman/podman.sock"),
        containers_conf=conf, peapod_home=peapod_home())
    print(doctor.format_results(results))
    return doctor.exit_code(results)


def _non_negative(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a non-negative integer")
    return size


def build_parser() -> argparse.ArgumentParser:
    parser = KubectlParser(prog="peapod", description="Kubernetes-style Pods on "
                                     "small fleets of machines, over NATS and podman.")
    parser.add_argument("--context", help="the context to use (default $PEAPOD_CONTEXT, else "
                        "the current context of $PEAPOD_CONFIG or $PEAPOD_HOME/config)")
    parser.add_argument("-n", "--namespace", help="namespace (default from the context)")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, fn: Any, *, cluster: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(fn=fn, needs_cluster=cluster)
        _add_anywhere_flags(p, namespace=True)
        return p

    p = add("up", "start a local cluster (nats-server, control plane, one kubelet)", cmd_up,
            cluster=False)
    p.add_argument("-d", "--detach", action="store_true", help="return once the node is Ready")
    p.add_argument("--node-name", help="name of the local node (default: hostname)")
    p.add_argument("--port", type=int, help="NATS client port (default 4222 if free)")
    p.add_argument("--extended-resources", metavar="NAME=COUNT,…",
                   help="extended resources the local node advertises, e.g. "
                        "example.com/dongle=2 (counted by the scheduler)")
    add("down", "stop the local cluster started by `peapod up`", cmd_down, cluster=False)
    add("doctor", "check this machine can run a node, and say how to fix it", cmd_doctor,
        cluster=False)
    p = add("apply", "apply pods, deployments, replicasets, namespaces, configmaps, secrets, "
            "persistentvolumes and persistentvolumeclaims from a file (YAML or JSON, - for stdin)", cmd_apply)
    p.add_argument("-f", "--filename", required=True)
    p = add("create", "create objects from a file (YAML or JSON, - for stdin), or by name: "
            "create namespace|configmap NAME, create secret generic NAME, create cronjob NAME "
            "--image=I --schedule=S [-- CMD…], create job NAME --image=I | --from=cronjob/X, "
            "create priorityclass NAME --value=N",
            cmd_create)
    p.add_argument("-f", "--filename")
    p.add_argument("what", nargs="*", metavar="KIND NAME")
    p.add_argument("--from-literal", action="append", metavar="KEY=VALUE",
                   help="configmap, secret generic: a key and its value")
    p.add_argument("--from-file", action="append", metavar="[KEY=]PATH",
                   help="configmap, secret generic: a file (key: its name) or a directory")
    p.add_argument("--type", help="secret generic: the Secret's type (default Opaque)")
    for flag, text in (("--docker-server", "secret docker-registry: the registry (default "
                        "Docker Hub)"), ("--docker-username", "secret docker-registry"),
                       ("--docker-password", "secret docker-registry"),
                       ("--docker-email", "secret docker-registry"),
                       ("--cert", "secret tls: PEM certificate file"),
                       ("--key", "secret tls: PEM private key file"),
                       ("--image", "cronjob, job: the container's image"),
                       ("--schedule", "cronjob: the cron schedule ('*/5 * * * *', @daily …)"),
                       ("--restart", "cronjob: the pods' restartPolicy, OnFailure (default) or "
                        "Never"),
                       ("--from", "job: make it from a CronJob's template (cronjob/NAME)"),
                       ("--value", "priorityclass: the priority (default 0)"),
                       ("--preemption-policy", "priorityclass: PreemptLowerPriority (default) "
                        "or Never"),
                       ("--description", "priorityclass: what the class is for")):
        p.add_argument(flag, help=text)
    p.add_argument("--global-default", nargs="?", const="true", metavar="BOOL",
                   help="priorityclass: the class of pods that name none (default false)")
    p = add("get", "list objects: pods, deployments, replicasets, daemonsets, jobs, cronjobs, "
            "nodes, namespaces, configmaps, secrets, pv, pvc, events; several as deploy,rs; all",
            cmd_get)
    p.add_argument("resource")
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output", metavar="FORMAT", help="wide, yaml, json, name, "
                   "jsonpath=TEMPLATE or custom-columns=HEADER:PATH,…")
    p.add_argument("-w", "--watch", action="store_true")
    p.add_argument("--resource-version", type=_non_negative, metavar="N",
                   help="with -w: no list, the changes after resourceVersion N (an hour is kept)")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector")
    p.add_argument("--show-labels", action="store_true", help="show all labels as the last column")
    p.add_argument("--no-headers", action="store_true", help="no header row in tables")
    p.add_argument("--chunk-size", type=_non_negative, default=CHUNK_SIZE,
                   help="list in pages of at most this many objects; 0: as few pages as "
                        "fit in a message (default 500)")
    p = add("describe", "show details of a pod, deployment, replicaset, daemonset, job, node, "
            "namespace, configmap, secret, pv or pvc", cmd_describe)
    p.add_argument("resource")
    p.add_argument("name", nargs="?")
    p = add("delete", "delete pods, deployments, replicasets, namespaces, configmaps, secrets, "
            "pv or pvc by name, label or file", cmd_delete)
    p.add_argument("resource", nargs="?")
    p.add_argument("names", nargs="*")
    p.add_argument("-f", "--filename")
    p.add_argument("--grace-period", type=int, default=None)
    p.add_argument("--force", action="store_true", help="delete at once, grace period 0")
    p.add_argument("--wait", default=True, type=lambda v: v.lower() != "false",
                   help="wait for the pod to be gone (default true)")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--cascade", default="background", help="background (default), foreground "
                   "or orphan: what happens to the objects the deleted one owns")
    p.add_argument("-l", "--selector", help="delete the objects whose labels match")
    p.set_defaults(all_namespaces=False)
    p = add("logs", "print a container's logs", cmd_logs)
    p.add_argument("pod")
    p.add_argument("-c", "--container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int)
    p.add_argument("-p", "--previous", action="store_true")
    p = add("exec", "run a command in a container: exec POD [-c C] -- CMD ...", cmd_exec)
    p.add_argument("pod")
    p.add_argument("-c", "--container")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    p.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY (with -i)")
    p.add_argument("command", nargs="*", help="the command, after --")
    p = add("attach", "attach to a running container's main process: attach POD [-c C] [-it]",
            cmd_attach)
    p.add_argument("pod")
    p.add_argument("-c", "--container")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    p.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY (with -i)")
    p = add("events", "list events; -f follows the stream", cmd_events)
    p.add_argument("-f", "--follow", "-w", "--watch", dest="follow", action="store_true")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    from peapod.cli import drain, labels, patch, rollout, taints, top
    rollout.add_commands(add)
    patch.add_commands(add)
    labels.add_commands(add)
    taints.add_commands(add)
    drain.add_commands(add)
    top.add_commands(add)
    p = add("config", "show or edit the config file: contexts, clusters, users",
            run_config_verb, cluster=False)
    _add_config_verbs(p.add_subparsers(dest="config_verb", required=True, metavar="VERB"))
    return parser


def _add_anywhere_flags(p: argparse.ArgumentParser, *, namespace: bool) -> None:
    """As kubectl, --context (and -n) may also follow the command."""
    p.add_argument("--context", dest="sub_context", default=None, help=argparse.SUPPRESS)
    if namespace:
        p.add_argument("-n", "--namespace", dest="sub_namespace", default=None,
                       help=argparse.SUPPRESS)


def _add_config_verbs(sub: Any) -> None:
    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        _add_anywhere_flags(p, namespace=False)
        return p

    p = add("get-contexts", "describe one or many contexts")
    p.add_argument("names", nargs="*")
    p.add_argument("-o", "--output", choices=["name"])
    p.add_argument("--no-headers", action="store_true")
    add("current-context", "display the current-context")
    add("use-context", "set the current-context").add_argument("name")
    p = add("view", "display the config file (it holds paths, never secrets)")
    p.add_argument("--minify", action="store_true", help="only the current context's entries")
    p.add_argument("-o", "--output", choices=["yaml", "json"])
    p = add("set-cluster", "set a cluster entry: its NATS server(s) and CA")
    p.add_argument("name")
    p.add_argument("--server", help="NATS URL; several, comma-separated, for a NATS cluster")
    p.add_argument("--certificate-authority", help="CA certificate: TLS is then required")
    p = add("set-credentials", "set a user entry: its NKEY credentials file")
    p.add_argument("name")
    p.add_argument("--credentials", help="credentials file (python -m peapod.bus.identity)")
    p = add("set-context", "set a context entry: cluster, user and namespace")
    p.add_argument("name", nargs="?")
    p.add_argument("--current", action="store_true", help="modify the current context")
    p.add_argument("--cluster", dest="context_cluster", metavar="CLUSTER")
    p.add_argument("--user", dest="context_user", metavar="USER")
    p.add_argument("--namespace", dest="context_namespace", metavar="NAMESPACE")
    for kind in ("context", "cluster", "user"):
        add(f"delete-{kind}", f"delete the specified {kind} from the config file").add_argument("name")


async def _with_client(args: argparse.Namespace,
                       fn: Callable[[Client, argparse.Namespace], Awaitable[int]]) -> int:
    context = load_context(args.selected_context)
    client = await Client.open(context, namespace=args.sub_namespace or args.namespace)
    try:
        return await fn(client, args)
    finally:
        await client.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """As kubectl: everything after the first ``--`` is the command for ``exec``, untouched."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] | None = None
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb in ("label", "annotate", "taint") and not any(e.startswith("-") and
                                                                not e.endswith("-") for e in extra):
        args.words = [*args.words, *extra]  # KEY=VALUE after -l SELECTOR, as kubectl takes them
    elif extra:
        KubectlParser(prog=f"peapod {args.verb}").error(f"unrecognized arguments: {' '.join(extra)}")
    args.selected_context = getattr(args, "sub_context", None) or args.context
    if command is not None:
        if args.verb == "create" and args.what:  # create cronjob|job NAME … -- CMD ARGS…
            args.what = [*args.what, *command]
        elif args.verb != "exec":
            KubectlParser(prog=f"peapod {args.verb}").error(
                f"unexpected arguments after --: {' '.join(command)}")
        else:
            args.command = [*args.command, *command]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.needs_cluster:
            code = asyncio.run(_with_client(args, args.fn))
        else:
            code = args.fn(args)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `peapod describe pod x | head`: the reader left, as with kubectl
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        code = 141  # what a shell reports for kubectl killed by SIGPIPE
    except PeapodError as exc:
        print(_error_line(exc), file=sys.stderr)
        code = exc.exit_code
    sys.exit(code)


def _error_line(exc: PeapodError) -> str:
    line = getattr(exc, "line", None)
    if callable(line):  # errors that word their own lines (unreachable server, drain)
        return str(line())
    if isinstance(exc, Unavailable):
        return f"Unable to connect to the server: {exc.message}"
    if isinstance(exc, Invalid):
        return invalid_message(exc)
    return f"Error from server ({exc.code}): {exc.message}"


def invalid_message(exc: Invalid) -> str:
    """kubectl's checkErr for an Invalid Status: ``The Pod "x" is invalid: <cause>``, or
    one ``* <cause>`` line each after the heading when there are several (duplicates
    dropped); an error that names no object is kubectl's plain ``error: ...``."""
    if not exc.kind and not exc.name:
        return f"error: {exc.message}"
    heading = f'The {exc.kind} "{exc.name}" is invalid'
    causes = list(dict.fromkeys(exc.causes))
    if not causes:
        return heading
    if len(causes) == 1:
        return f"{heading}: {causes[0]}"
    return "\n".join([f"{heading}: ", *(f"* {cause}" for cause in causes)])


if __name__ == "__main__":
    main()
