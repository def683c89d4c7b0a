"""The CLI's argument handling and its local checks, before anything is sent."""

from __future__ import annotations

import pytest

from peapod.cli.client import ServerUnreachable
from peapod.cli.main import _error_line, _resource, _validated, build_parser, parse_args
from peapod.errors import Conflict, Invalid, NotFound, Unavailable

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
       "spec": {"containers": [{"name": "db", "image": "mongo:3.3"}]}}


@pytest.mark.parametrize(("text", "expected"), [
    ("pods", ("pods", None)), ("po", ("pods", None)), ("pod/db", ("pods", "db")),
    ("no", ("nodes", None)), ("node/n1", ("nodes", "n1")), ("ev", ("events", None)),
    ("Pods", ("pods", None)),
])
def test_resource_names_and_short_forms_like_kubectl(text, expected) -> None:
    assert _resource(text) == expected


def test_an_unknown_resource_is_kubectls_error() -> None:
    with pytest.raises(Invalid, match='the server doesn\'t have a resource type "statefulsets"'):
        _resource("statefulsets")


def test_a_file_is_refused_whole_when_one_object_is_bad() -> None:
    bad = {**POD, "metadata": {"name": "Bad_Name"}}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    with pytest.raises(Invalid) as caught:
        _validated([POD, bad, node], verb="apply")
    assert "metadata.name" in caught.value.message
    assert ("Node 'n1': only Pods, Namespaces, ReplicaSets, Deployments, DaemonSets, Jobs, "
            "CronJobs, ConfigMaps, Secrets, PersistentVolumes, PersistentVolumeClaims and "
            "PriorityClasses can be applied") in caught.value.message
    assert _validated([POD], verb="apply") == [POD]
    with pytest.raises(Invalid, match="no objects passed to apply"):
        _validated([], verb="apply")


def test_exec_keeps_the_command_after_the_double_dash() -> None:
    args = parse_args(["exec", "db", "-c", "db", "--", "pkill", "-9", "mongod"])
    assert (args.pod, args.container) == ("db", "db")
    assert args.command == ["pkill", "-9", "mongod"]
    tricky = parse_args(["exec", "db", "--", "sh", "-c", "echo -- -n"])  # flags of the command stay
    assert (tricky.container, tricky.command) == (None, ["sh", "-c", "echo -- -n"])
    it = parse_args(["exec", "-it", "db", "--", "sh"])
    assert it.stdin and it.tty and it.command == ["sh"]
    with pytest.raises(SystemExit):
        parse_args(["get", "pods", "--", "x"])


def test_get_flags_like_kubectl() -> None:
    args = build_parser().parse_args(["get", "pods", "db", "-o", "wide", "-w", "-A", "-l", "app=x"])
    assert (args.resource, args.name, args.output, args.watch, args.all_namespaces, args.selector) == (
        "pods", "db", "wide", True, True, "app=x")
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["get", "pods", "-o", "table"])
    assert usage.value.code == 2


def test_error_lines_use_kubectls_prefixes() -> None:
    assert _error_line(NotFound('pods "db" not found')) == (
        'Error from server (NotFound): pods "db" not found')
    assert _error_line(Conflict("the object has been modified")).startswith(
        "Error from server (Conflict): ")
    assert _error_line(Invalid("no objects passed to apply")) == "error: no objects passed to apply"
    assert _error_line(Unavailable("cannot reach")) == "Unable to connect to the server: cannot reach"
    assert _error_line(ServerUnreachable([("tls://10.0.0.2:4222", "connection refused")])) == (
        "Unable to connect to the server at tls://10.0.0.2:4222: connection refused")
    assert _error_line(ServerUnreachable([("nats://a:4222", "connection refused"),
                                          ("nats://b:4222", "no answer within 1.2s")])) == (
        "Unable to connect to the servers: nats://a:4222: connection refused; "
        "nats://b:4222: no answer within 1.2s")


def test_context_and_namespace_may_follow_the_command_as_in_kubectl() -> None:
    args = parse_args(["logs", "-f", "db", "--context", "fleet", "-n", "prod"])
    assert (args.selected_context, args.sub_namespace) == ("fleet", "prod")
    args = parse_args(["--context", "local", "config", "view", "--minify"])
    assert (args.selected_context, args.config_verb, args.minify) == ("local", "view", True)
    with pytest.raises(SystemExit) as usage:
        parse_args(["config"])
    assert usage.value.code == 2
