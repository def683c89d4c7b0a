"""The wire contract on disk: a JSON Schema per kind and the NATS subject table.

``protos/`` is what a client in another language needs to talk to peapod
without reading Python. Every file there is generated from the code that
actually runs: the schemas from the pydantic models (validation mode, wire
names), the subject table from ``peapod.bus.subjects``. ``make protos``
writes them; ``make lint`` and ``tests/unit/api/test_schema.py`` regenerate
them in memory and compare, so a model change that forgets its protos fails
before it reaches anyone else. Output is deterministic (sorted keys, fixed
indent, trailing newline) so a diff shows only what really changed.

    python -m peapod.api.schema --write protos
    python -m peapod.api.schema --check protos
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from peapod.api.apps import DaemonSet, Deployment, ReplicaSet
from peapod.api.base import Model
from peapod.api.batch import CronJob, Job
from peapod.api.config import ConfigMap, Secret
from peapod.api.event import Event
from peapod.api.namespace import Namespace
from peapod.api.node import Node
from peapod.api.pod import Pod
from peapod.api.priority import PriorityClass
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_KINDS: dict[str, type[Model]] = {
    "pod.schema.json": Pod,
    "node.schema.json": Node,
    "event.schema.json": Event,
    "namespace.schema.json": Namespace,
    "replicaset.schema.json": ReplicaSet,
    "deployment.schema.json": Deployment,
    "daemonset.schema.json": DaemonSet,
    "configmap.schema.json": ConfigMap,
    "secret.schema.json": Secret,
    "job.schema.json": Job,
    "cronjob.schema.json": CronJob,
    "persistentvolume.schema.json": PersistentVolume,
    "persistentvolumeclaim.schema.json": PersistentVolumeClaim,
    "priorityclass.schema.json": PriorityClass,
}
SUBJECTS_FILE = "subjects.md"


def render_schema(model: type[Model], *, filename: str) -> str:
    """The model's JSON Schema as the text committed under protos/."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = f"urn:peapod:protos:v1:{filename}"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_subjects() -> str:
    """protos/subjects.md: who publishes and who subscribes on every subject."""
    # api must not import bus when it is imported (api is the bottom layer); this function
    # runs only from the generator, a build tool, so the import is deferred to here.
    from peapod.bus import subjects as s

    lines = [
        "# NATS subjects, streams and buckets",
        "",
        "Generated from `services/peapod/bus/subjects.py` by `make protos`: do not edit.",
        "",
        "| Subject | Publisher | Subscriber |",
        "| --- | --- | --- |",
        *(f"| `{subject}` | {publisher} | {subscriber} |"
          for subject, publisher, subscriber in s.SUBJECT_TABLE),
        "",
        "## Names in subjects and keys",
        "",
        "Every `<namespace>`, `<name>` and `<node>` above is one token: letters, digits and `-`",
        "stay, `.` becomes `_`, any other character becomes `=` and two upper-case hex digits per",
        "UTF-8 byte. `_` and `=` appear only as escapes, so the encoding is injective and",
        "reversible; no token contains `.`, so `*` matches exactly one name and",
        "`peapod.node.<node>.>` matches only that node's subjects.",
        "",
        "| Name | Token | Why |",
        "| --- | --- | --- |",
        *(f"| `{name}` | `{s.token(name)}` | {why} |" for name, why in s.TOKEN_EXAMPLES),
        "",
        "## Streams and buckets",
        "",
        "| Name | What it holds |",
        "| --- | --- |",
        f"| `{s.KV_BUCKET}` | KV bucket (stream `{s.KV_STREAM}`): every object, the source of truth |",
        f"| `{s.LEASE_BUCKET}` | KV bucket (stream `{s.LEASE_STREAM}`, memory storage): "
        "one heartbeat lease per node |",
        f"| `{s.NODES_STREAM}` | stream: the pods bound to each node, on that node's partition |",
        f"| `{s.WATCH_STREAM}` | stream: every change of every object but Secrets, for "
        "watches (an hour) |",
        f"| `{s.SECRET_WATCH_STREAM}` | stream: every change of a Secret, for the admin's "
        "watches (an hour) |",
        f"| `{s.EVENTS_STREAM}` | stream: Events from every component |",
    ]
    return "\n".join(lines) + "\n"


def render_protos() -> dict[str, str]:
    """Every generated file, by name, as it should read on disk."""
    files = {name: render_schema(model, filename=name) for name, model in SCHEMA_KINDS.items()}
    files[SUBJECTS_FILE] = render_subjects()
    return files


def write_protos(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_protos().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_protos(directory: Path) -> list[str]:
    """One line per generated file that is missing or differs from what the code generates."""
    problems = []
    for name, text in render_protos().items():
        path = directory / name
        if not path.exists():
            problems.append(f"{path} is missing: run `make protos`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} is out of date: run `make protos`")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peapod.api.schema", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="DIR", type=Path, help="write the generated files")
    action.add_argument("--check", metavar="DIR", type=Path,
                        help="exit 1 if any file in DIR differs from what the code generates")
    args = parser.parse_args(argv)
    if args.write is not None:
        for path in write_protos(args.write):
            print(f"wrote {path}")
        return 0
    problems = stale_protos(args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
