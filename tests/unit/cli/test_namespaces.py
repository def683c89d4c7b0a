"""Namespaces in the CLI: kubectl's table, describe text, short names and -n rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from peapod.api import Namespace
from peapod.cli.describe import describe_namespace
from peapod.cli.main import _named_object, _resource, _validated, parse_args
from peapod.cli.printers import render
from peapod.errors import Invalid

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def namespace(name: str, *, phase: str = "Active", created: float = 5, **labels: str) -> Namespace:
    return Namespace.model_validate({
        "metadata": {"name": name, "creationTimestamp": ago(created),
                     "labels": {"kubernetes.io/metadata.name": name, **labels}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": phase}})


def pod(namespace: str | None = None, **metadata) -> dict:
    meta = {"name": "qos-demo", **({"namespace": namespace} if namespace else {}), **metadata}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


@pytest.mark.parametrize("text", ["namespaces", "namespace", "ns", "ns/default"])
def test_namespace_resource_names_and_short_form_like_kubectl(text):
    assert _resource(text)[0] == "namespaces"


def test_get_ns_is_kubectls_table():
    rows = [namespace("default", created=5 * 86400), namespace("qos-example", phase="Terminating")]
    assert render(rows, output=None, kind="namespaces", now=NOW) == (
        "NAME          STATUS        AGE\n"
        "default       Active        5d\n"
        "qos-example   Terminating   5s")
    assert render(rows[:1], output="wide", kind="namespaces", now=NOW, show_labels=True) == (
        "NAME      STATUS   AGE   LABELS\n"
        "default   Active   5d    kubernetes.io/metadata.name=default")
    assert render(rows, output="name", kind="namespaces", now=NOW) == (
        "namespace/default\nnamespace/qos-example")


def test_describe_ns_is_kubectls_text():
    assert describe_namespace(namespace("qos-example", team="a")) == (
        "Name:         qos-example\n"
        "Labels:       kubernetes.io/metadata.name=qos-example\n"
        "              team=a\n"
        "Annotations:  <none>\n"
        "Status:       Active\n"
        "\n"
        "No resource quota.\n"
        "\n"
        "No LimitRange resource.")


def test_a_namespace_given_with_n_that_contradicts_the_file_is_kubectls_error():
    with pytest.raises(Invalid) as refused:
        _validated([pod("qos-example")], verb="apply", namespace="default")
    assert refused.value.message == (
        'the namespace from the provided object "qos-example" does not match the namespace '
        "\"default\". You must pass '--namespace=qos-example' to perform this operation.")


def test_without_n_or_when_n_agrees_the_files_namespace_is_used():
    for flag in (None, "qos-example"):
        assert _validated([pod("qos-example")], verb="create", namespace=flag)
    assert _validated([pod()], verb="create", namespace="dev")  # no namespace in the file


def test_a_namespace_object_is_not_held_to_n():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "qos-example"}}
    assert _validated([ns], verb="apply", namespace="default") == [ns]


def test_create_namespace_name_builds_the_object_and_refuses_anything_else():
    assert _named_object(parse_args(["create", "ns", "dev"])) == {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": "dev"}}
    with pytest.raises(Invalid, match=r"exactly one NAME is required, got 0"):
        _named_object(parse_args(["create", "namespace"]))
    with pytest.raises(Invalid, match=r"exactly one NAME is required, got 2"):
        _named_object(parse_args(["create", "namespace", "a", "b"]))
    with pytest.raises(Invalid, match=r'unknown command "pod" for "peapod create"'):
        _named_object(parse_args(["create", "pod", "web"]))
    with pytest.raises(Invalid, match=r"metadata.name: invalid name 'Dev'"):
        _named_object(parse_args(["create", "namespace", "Dev"]))


def test_create_parses_a_file_or_a_namespace_name():
    assert parse_args(["create", "namespace", "dev"]).what == ["namespace", "dev"]
    args = parse_args(["create", "-f", "x.yml", "-n", "dev"])
    assert (args.filename, args.what, args.sub_namespace) == ("x.yml", [], "dev")
