"""Where the CLI finds its cluster: a kubeconfig-shaped file of clusters, users and contexts.

Operators already know kubeconfig, so peapod's file has the same shape and
the same verbs (``peapod config get-contexts``, ``use-context``,
``set-cluster`` …) print kubectl's messages. A *cluster* is how to reach the
NATS servers (``server``, a comma-separated list for a NATS cluster, and an
optional ``certificate-authority``: with it the CLI insists on TLS and
verifies the server); a *user* names an NKEY credentials file
(``peapod.bus.identity``); a *context* joins a cluster, a user and a default
namespace. No secret is ever in this file, only paths, so ``config view``
prints it whole.

The file is ``$PEAPOD_CONFIG``, else ``$PEAPOD_HOME/config`` (``$PEAPOD_HOME``
defaults to ``~/.peapod``, which also holds the local cluster's state). The
context used is ``--context``, else ``$PEAPOD_CONTEXT``, else the file's
``current-context``. Relative paths in the file are relative to the file.

Writes keep every other entry and any field peapod does not know, replace
the file atomically (temporary file, then rename) with mode 0600, and happen
only when something changes: each ``set-*`` verb says ``unchanged`` instead,
so a configuration tool (Ansible's ``changed_when``) reports changes truthfully.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from peapod.bus.identity import Credentials
from peapod.cli.printers import TABLE_MIN_WIDTH, TABLE_PADDING, align_columns
from peapod.errors import Invalid, Unavailable

API_VERSION = "v1"
KIND = "Config"
# section of the file -> key of each entry's body, as in kubeconfig
SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
LOCAL_CONTEXT, LOCAL_USER = "local", "local-admin"
NO_CONTEXT_HINT = 'run "peapod up" or select one with "peapod config use-context NAME"'


def peapod_home() -> Path:
    return Path(os.environ.get("PEAPOD_HOME") or Path.home() / ".peapod")


def config_path() -> Path:
    return Path(os.environ.get("PEAPOD_CONFIG") or peapod_home() / "config")


@dataclass(frozen=True)
class Context:
    """A context resolved to everything a connection needs."""

    name: str
    server: str
    creds_file: str
    ca_file: str | None = None
    namespace: str = "default"
    user: str = ""

    def credentials(self) -> Credentials:
        """The NKEY from the user's file, with this context's server and CA."""
        try:
            creds = Credentials.load(self.creds_file)
        except Unavailable as exc:  # a local file problem, not the cluster's
            raise Invalid(f'user "{self.user}": {exc.message}') from None
        return Credentials(url=self.server, user=creds.user, seed=creds.seed, ca_file=self.ca_file)


def _empty() -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "preferences": {}, "clusters": None,
            "users": None, "contexts": None, "current-context": ""}


class Config:
    """The file's document: read once, edited in memory, written back whole."""

    def __init__(self, path: Path, doc: dict[str, Any] | None = None) -> None:
        self.path = path
        self.doc = doc if doc is not None else _empty()

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        """The file at ``path`` (default: ``config_path()``); a missing file is an empty config."""
        target = path or config_path()
        try:
            text = target.read_text()
        except FileNotFoundError:
            return cls(target)
        except OSError as exc:
            raise Invalid(f"cannot read config file {target}: {exc.strerror or exc}") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or "not YAML"
            raise Invalid(f"config file {target} is not valid YAML{where}: {problem}") from None
        if doc is None:
            return cls(target)
        _check_document(doc, target)
        return cls(target, doc)

    # -- reading --------------------------------------------------------------------------

    @property
    def current_context(self) -> str:
        return str(self.doc.get("current-context") or "")

    def names(self, section: str) -> list[str]:
        return [entry["name"] for entry in self.doc.get(section) or []]

    def _item(self, section: str, name: str) -> dict[str, Any] | None:
        return next((item for item in self.doc.get(section) or [] if item["name"] == name), None)

    def entry(self, section: str, name: str) -> dict[str, Any] | None:
        """The body of entry ``name`` (its ``cluster:``/``user:``/``context:`` mapping)."""
        item = self._item(section, name)
        return None if item is None else dict(item.get(SECTIONS[section]) or {})

    def resolve(self, name: str | None = None) -> Context:
        """The context ``name`` (default: the current one) with its cluster and user."""
        name = name or self.current_context
        if not name:
            raise Invalid(f"no context is set in {self.path}: {NO_CONTEXT_HINT}")
        context = self.entry("contexts", name)
        if context is None:
            raise Invalid(f'context "{name}" does not exist in {self.path}')
        cluster_name, user_name = _field(context, "cluster"), _field(context, "user")
        if not cluster_name or not user_name:
            raise Invalid(f'context "{name}" has no {"cluster" if not cluster_name else "user"}: '
                          f"peapod config set-context {name} --cluster CLUSTER --user USER")
        cluster, user = self.entry("clusters", cluster_name), self.entry("users", user_name)
        if cluster is None or user is None:
            kind, missing = ("cluster", cluster_name) if cluster is None else ("user", user_name)
            raise Invalid(f'{kind} "{missing}" of context "{name}" does not exist in {self.path}')
        server, creds = _field(cluster, "server"), _field(user, "credentials")
        if not server:
            raise Invalid(f'cluster "{cluster_name}" has no server: '
                          f"peapod config set-cluster {cluster_name} --server URL")
        if not creds:
            raise Invalid(f'user "{user_name}" has no credentials file: '
                          f"peapod config set-credentials {user_name} --credentials FILE")
        ca = _field(cluster, "certificate-authority")
        return Context(name=name, server=server, creds_file=self._absolute(creds),
                       ca_file=self._absolute(ca) if ca else None,
                       namespace=_field(context, "namespace") or "default", user=user_name)

    def _absolute(self, path: str) -> str:
        return str(self.path.parent / Path(path).expanduser())

    # -- editing --------------------------------------------------------------------------

    def set_entry(self, section: str, name: str, fields: dict[str, str | None]) -> tuple[bool, bool]:
        """Merge ``fields`` into entry ``name``, creating it; ``None`` keeps a field, ``""``
        removes it. Returns (whether it existed, whether anything changed)."""
        item = self._item(section, name)
        existed = item is not None
        if item is None:
            item = {"name": name}
            self.doc[section] = [*(self.doc.get(section) or []), item]
        before = item.get(SECTIONS[section]) or {}
        body = dict(before)
        for key, value in fields.items():
            if value == "":
                body.pop(key, None)
            elif value is not None:
                body[key] = value
        item[SECTIONS[section]] = body
        return existed, not existed or body != before

    def delete_entry(self, section: str, name: str) -> bool:
        entries = self.doc.get(section) or []
        kept = [item for item in entries if item["name"] != name]
        self.doc[section] = kept or None
        return len(kept) != len(entries)

    def use(self, name: str) -> bool:
        if self.entry("contexts", name) is None:
            raise Invalid(f'no context exists with the name: "{name}"')
        changed = self.current_context != name
        self.doc["current-context"] = name
        return changed

    def save(self) -> None:
        """Replace the file atomically, mode 0600: a crash leaves the old file or the new one."""
        target = Path(os.path.realpath(self.path))
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # mode 0600
        except OSError as exc:
            raise Invalid(f"cannot write config file {self.path}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w") as out:
                out.write(self.render())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise Invalid(f"cannot write config file {self.path}: {exc.strerror or exc}") from None
            raise

    # -- printing -------------------------------------------------------------------------

    def minified(self, name: str | None = None) -> Config:
        """Only the context ``name`` (default: the current one), its cluster and its user."""
        name = name or self.current_context
        context = self.entry("contexts", name) if name else None
        if context is None:
            raise Invalid(f'context "{name}" does not exist' if name else "current-context is not set")
        doc = {**self.doc, "current-context": name}
        for section, key in (("contexts", None), ("clusters", "cluster"), ("users", "user")):
            wanted = name if key is None else context.get(key)
            doc[section] = [e for e in self.doc.get(section) or [] if e["name"] == wanted] or None
        return Config(self.path, doc)

    def render(self, output: str = "yaml") -> str:
        """The document as kubectl prints a config: keys sorted, entries sorted by name."""
        doc = {**_empty(), **self.doc}
        for section in SECTIONS:
            doc[section] = sorted(doc[section], key=lambda e: e["name"]) if doc[section] else None
        if output == "json":
            return json.dumps(doc, indent=4, sort_keys=True) + "\n"
        return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=1 << 16)


def _field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _check_document(doc: Any, path: Path) -> None:
    """Refuse anything but a kubeconfig-shaped Config, naming the file and the problem."""
    if not isinstance(doc, dict) or doc.get("kind", KIND) != KIND:
        raise Invalid(f"{path} is not a peapod config file (expected kind: {KIND})")
    if doc.get("apiVersion", API_VERSION) != API_VERSION:
        raise Invalid(f"{path}: apiVersion {doc['apiVersion']!r} is not supported "
                      f"(expected {API_VERSION})")
    for section, key in SECTIONS.items():
        entries = doc.get(section)
        if entries is not None and not isinstance(entries, list):
            raise Invalid(f"{path}: {section} must be a list")
        for i, entry in enumerate(entries or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise Invalid(f"{path}: {section}[{i}] has no name")
            if not isinstance(entry.get(key) or {}, dict):
                raise Invalid(f"{path}: {section}[{i}].{key} must be a mapping")
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise Invalid(f"{path}: current-context must be a string")


def load_context(name: str | None = None, *, path: Path | None = None) -> Context:
    """The context to use: ``name``, else ``$PEAPOD_CONTEXT``, else the current one."""
    return Config.load(path).resolve(name or os.environ.get("PEAPOD_CONTEXT") or None)


def save_local_context(*, server: str, credentials: Path, path: Path | None = None) -> Config:
    """What ``peapod up`` leaves: cluster ``local``, user ``local-admin``, context ``local``,
    made current (as kind and minikube do). A namespace chosen for it earlier is kept."""
    config = Config.load(path)
    changes = [config.set_entry("clusters", LOCAL_CONTEXT,
                                {"server": server, "certificate-authority": ""})[1],
               config.set_entry("users", LOCAL_USER, {"credentials": str(credentials)})[1]]
    existing = config.entry("contexts", LOCAL_CONTEXT) or {}
    changes.append(config.set_entry("contexts", LOCAL_CONTEXT, {
        "cluster": LOCAL_CONTEXT, "user": LOCAL_USER,
        "namespace": None if existing.get("namespace") else "default"})[1])
    changes.append(config.use(LOCAL_CONTEXT))
    if any(changes):
        config.save()
    return config


# -- `peapod config VERB`: kubectl's verbs and messages, word for word ---------------------

def _absolute_arg(path: str | None) -> str | None:
    """Paths given on the command line are stored absolute; "" (remove the field) stays."""
    return os.path.abspath(os.path.expanduser(path)) if path else path


def _aggregate(errors: list[str]) -> Invalid:
    """kubectl's ``utilerrors.NewAggregate``: one error as it is, several in brackets."""
    return Invalid(errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")


def get_contexts(config: Config, args: argparse.Namespace) -> int:
    missing = [n for n in args.names if config.entry("contexts", n) is None]
    shown = sorted(set(args.names or config.names("contexts")) - set(missing))
    if args.output == "name":
        lines = shown
    else:
        rows = [] if args.no_headers else [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]]
        for name in shown:
            body = config.entry("contexts", name) or {}
            rows.append(["*" if name == config.current_context else " ", name,
                         *(_field(body, key) for key in ("cluster", "user", "namespace"))])
        table = "\n".join("\t".join(row) for row in rows)
        lines = [align_columns(table, padding=TABLE_PADDING, minwidth=TABLE_MIN_WIDTH)] if rows else []
    if lines:
        print("\n".join(lines))
    if missing:
        raise _aggregate([f"context {name} not found" for name in missing])
    return 0


def current_context(config: Config, args: argparse.Namespace) -> int:
    if not config.current_context:
        raise Invalid("current-context is not set")
    print(config.current_context)
    return 0


def use_context(config: Config, args: argparse.Namespace) -> int:
    if config.use(args.name):
        config.save()
    print(f'Switched to context "{args.name}".')
    return 0


def view(config: Config, args: argparse.Namespace) -> int:
    shown = config.minified(args.selected_context) if args.minify else config
    sys.stdout.write(shown.render(args.output or "yaml"))
    return 0


def _set(config: Config, section: str, name: str, fields: dict[str, str | None]) -> tuple[bool, bool]:
    existed, changed = config.set_entry(section, name, fields)
    if changed:
        config.save()
    return existed, changed


def set_cluster(config: Config, args: argparse.Namespace) -> int:
    _, changed = _set(config, "clusters", args.name, {
        "server": args.server, "certificate-authority": _absolute_arg(args.certificate_authority)})
    print(f'Cluster "{args.name}" {"set" if changed else "unchanged"}.')
    return 0


def set_credentials(config: Config, args: argparse.Namespace) -> int:
    _, changed = _set(config, "users", args.name, {"credentials": _absolute_arg(args.credentials)})
    print(f'User "{args.name}" {"set" if changed else "unchanged"}.')
    return 0


def set_context(config: Config, args: argparse.Namespace) -> int:
    if bool(args.name) == args.current:
        raise Invalid("you cannot specify both a context name and --current" if args.current
                      else "you must specify a non-empty context name or --current")
    name = args.name or config.current_context
    if not name:
        raise Invalid("no current context is set")
    existed, changed = _set(config, "contexts", name, {
        "cluster": args.context_cluster, "user": args.context_user,
        "namespace": args.context_namespace})
    outcome = "unchanged" if not changed else "modified" if existed else "created"
    print(f'Context "{name}" {outcome}.')
    return 0


def delete_context(config: Config, args: argparse.Namespace) -> int:
    if not config.delete_entry("contexts", args.name):
        raise Invalid(f"cannot delete context {args.name}, not in {config.path}")
    if config.current_context == args.name:  # kubectl keeps current-context as it is, and warns
        print('warning: this removed your active context, use "peapod config use-context" '
              "to select a different one", file=sys.stderr)
    config.save()
    print(f"deleted context {args.name} from {config.path}")
    return 0


def delete_cluster(config: Config, args: argparse.Namespace) -> int:
    if not config.delete_entry("clusters", args.name):
        raise Invalid(f"cannot delete cluster {args.name}, not in {config.path}")
    config.save()
    print(f"deleted cluster {args.name} from {config.path}")  # kubectl's words, no quotes
    return 0


def delete_user(config: Config, args: argparse.Namespace) -> int:
    if not config.delete_entry("users", args.name):
        raise Invalid(f"cannot delete user {args.name}, not in {config.path}")
    config.save()
    print(f"deleted user {args.name} from {config.path}")
    return 0


VERBS = {"get-contexts": get_contexts, "current-context": current_context,
         "use-context": use_context, "view": view, "set-cluster": set_cluster,
         "set-credentials": set_credentials, "set-context": set_context,
         "delete-context": delete_context, "delete-cluster": delete_cluster,
         "delete-user": delete_user}


def run_config_verb(args: argparse.Namespace) -> int:
    """``peapod config VERB``: read the file, run the verb (which saves only on a change)."""
    return VERBS[args.config_verb](Config.load(), args)
