"""The CLI's argument handling and its local checks, before anything is sent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from peapod.cli.client import ServerUnreachable
from peapod.cli.main import _error_line, _resource, _validated, build_parser, parse_args
from peapod.cli.printers import check_output
from peapod.errors import Conflict, Invalid, NotFound, Unavailable, from_wire, invalid

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
    # kubectl's line for each refused object, one after another
    first, second = _error_line(caught.value).split("\n")
    assert first.startswith('The Pod "Bad_Name" is invalid: metadata.name: ')
    assert ("error: Node 'n1': only Pods, Namespaces, ReplicaSets, Deployments, DaemonSets, Jobs, "
            "CronJobs, ConfigMaps, Secrets, PersistentVolumes, PersistentVolumeClaims and "
            "PriorityClasses can be applied") in second
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
    with pytest.raises(Invalid, match='output format "table", allowed formats are: '
                       "custom-columns,json,jsonpath,name,wide,yaml"):
        check_output(build_parser().parse_args(["get", "pods", "-o", "table"]).output)


def test_error_lines_use_kubectls_prefixes() -> None:
    assert _error_line(NotFound('pods "db" not found')) == (
        'Error from server (NotFound): pods "db" not found')
    assert _error_line(Conflict("the object has been modified")).startswith(
        "Error from server (Conflict): ")
    assert _error_line(Invalid("no objects passed to apply")) == "error: no objects passed to apply"
    assert _error_line(invalid("Pod", "x", ["spec.containers[0].image: Required value"])) == (
        'The Pod "x" is invalid: spec.containers[0].image: Required value')
    assert _error_line(Unavailable("cannot reach")) == "Unable to connect to the server: cannot reach"
    assert _error_line(ServerUnreachable([("tls://10.0.0.2:4222", "connection refused")])) == (
        "Unable to connect to the server at tls://10.0.0.2:4222: connection refused")
    assert _error_line(ServerUnreachable([("nats://a:4222", "connection refused"),
                                          ("nats://b:4222", "no answer within 1.2s")])) == (
        "Unable to connect to the servers: nats://a:4222: connection refused; "
        "nats://b:4222: no answer within 1.2s")


def test_an_invalid_object_reads_as_kubectls_checkerr_after_the_bus() -> None:
    """The apiserver's Status message is NewInvalid's (``Deployment.apps``, ``[a, b]``); the
    CLI words kubectl's lines from the details that cross the bus with it."""
    refused = invalid("Deployment.apps", "web", ["spec.replicas: Invalid value: -1: must be "
                                                  "greater than or equal to 0",
                                                  "spec.selector: Required value",
                                                  "spec.selector: Required value"])
    assert refused.message == (
        'Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater '
        "than or equal to 0, spec.selector: Required value]")
    wire = refused.to_wire()
    assert wire["details"]["kind"] == "Deployment"
    assert wire["details"]["causes"][1] == {"field": "spec.selector", "message": "Required value"}
    received = from_wire(wire)
    assert isinstance(received, Invalid) and received.message == refused.message
    assert _error_line(received) == (
        'The Deployment "web" is invalid: \n'
        "* spec.replicas: Invalid value: -1: must be greater than or equal to 0\n"
        "* spec.selector: Required value")
    # a cause without a field path (Kubernetes' field.NewPath("")) is all message
    static = from_wire(invalid("Pod", "p", ["Forbidden: static pods cannot be resized"]).to_wire())
    assert _error_line(static) == 'The Pod "p" is invalid: Forbidden: static pods cannot be resized'
    assert from_wire({"code": "Invalid", "message": "bad"}).message == "bad"


def test_context_and_namespace_may_follow_the_command_as_in_kubectl() -> None:
    args = parse_args(["logs", "-f", "db", "--context", "fleet", "-n", "prod"])
    assert (args.selected_context, args.sub_namespace) == ("fleet", "prod")
    args = parse_args(["--context", "local", "config", "view", "--minify"])
    assert (args.selected_context, args.config_verb, args.minify) == ("local", "view", True)
    with pytest.raises(SystemExit) as usage:
        parse_args(["config"])
    assert usage.value.code == 1


@pytest.mark.parametrize(("argv", "line"), [
    (["get", "pods", "--foo"], "error: unknown flag: --foo"),
    (["get", "pods", "--foo=1"], "error: unknown flag: --foo"),
    (["gte", "pods"], 'error: unknown command "gte" for "peapod" (did you mean "get"?)'),
    (["rollout", "stats", "deploy/web"],
     'error: unknown command "stats" for "peapod rollout" (did you mean "status"?)'),
    (["config", "get-clustrs"], 'error: unknown command "get-clustrs" for "peapod config"'),
    (["scale", "deploy/web", "--replicas=x"],
     'error: invalid argument "x" for "--replicas" flag: parsing "x": invalid syntax'),
    (["top", "pods", "--sort-by", "disk"],
     "error: invalid argument \"disk\" for \"--sort-by\" flag: must be one of 'cpu', 'memory'"),
    (["get"], "error: You must specify the type of resource to get."),
    (["apply"], "error: must specify -f"),
    (["apply", "-f"], "error: flag needs an argument: --filename"),
    (["logs"], "error: required argument missing: pod (see 'peapod logs --help')"),
    (["get", "pods", "a", "b"], 'error: unexpected arguments for "peapod get": b'),
    (["get", "pods", "--", "x"], "error: unexpected arguments after --: x"),
    ([], "error: \"peapod\" needs a command: see 'peapod --help'"),
])
def test_a_mistake_on_the_command_line_is_one_kubectl_line_and_exit_code_1(argv, line, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_args(argv)
    assert refused.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


def test_a_reader_that_leaves_early_is_no_traceback(tmp_path) -> None:
    """`peapod config view | head -1`: the pipe closes; kubectl dies quietly of SIGPIPE."""
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
                      "current-context: ''\npreferences: {}\n")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run([sys.executable, "-m", "peapod.cli.main", "config", "view"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "PEAPOD_CONFIG": str(config)}, check=False)
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and done.stderr == ""
    assert done.returncode == 141


def test_a_terminal_without_a_size_sends_none(monkeypatch) -> None:
    """`script`'s pty (and some serial consoles) is 0x0: kubectl sends no size, nor do we."""
    import fcntl
    import pty
    import struct
    import termios

    from peapod.cli.interactive import window_size
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            monkeypatch.setattr(sys, "stdout", terminal)
            monkeypatch.setattr(sys, "stdin", terminal)
            for rows, cols, expected in ((0, 0, None), (24, 80, {"width": 80, "height": 24})):
                fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                assert window_size() == expected
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize(("output", "message"), [
    ("yml", 'unable to match a printer suitable for the output format "yml", allowed formats are: '
     "custom-columns,json,jsonpath,name,wide,yaml"),
    ("jsonpath", "template format specified but no template given"),
    ("jsonpath=", "template format specified but no template given"),
    ("jsonpath={.items[", "error parsing jsonpath {.items[, unclosed action"),
    ("custom-columns=", "custom-columns format specified but no custom columns given"),
    ("custom-columns=NAME", "unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>"),
])
def test_a_bad_output_format_is_refused_before_anything_is_fetched(output, message) -> None:
    with pytest.raises(Invalid) as refused:
        check_output(output)
    assert refused.value.message == message
