"""The Namespace kind: Kubernetes' shape and name rules, and what peapod refuses."""

from __future__ import annotations

import pytest

from peapod.api import Namespace, parse_object
from peapod.errors import Invalid


def namespace(**fields) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "qos-example"}, **fields}


def test_a_namespace_manifest_parses_with_kubernetes_field_names():
    ns = parse_object(namespace(spec={"finalizers": ["kubernetes"]},
                                status={"phase": "Active"}))
    assert isinstance(ns, Namespace)
    assert ns.to_wire() == {"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "qos-example"},
                            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    assert not ns.terminating


@pytest.mark.parametrize("name", ["a.b", "Prod", "prod_1", "a" * 64])
def test_a_namespace_name_must_be_a_dns_label(name):
    with pytest.raises(Invalid, match=f"metadata.name: invalid name {name!r}: a lowercase RFC 1123 "
                                      r"label"):
        parse_object(namespace(metadata={"name": name}))


def test_a_finalizer_peapod_cannot_remove_is_refused_with_the_reason():
    with pytest.raises(Invalid, match=r"spec.finalizers\[1\]: unsupported value 'example.com/x': "
                                      r"peapod has no finalize subresource"):
        parse_object(namespace(spec={"finalizers": ["kubernetes", "example.com/x"]}))


def test_unknown_fields_and_phases_are_refused():
    with pytest.raises(Invalid, match=r"spec.finalizer: unknown field"):
        parse_object(namespace(spec={"finalizer": []}))
    with pytest.raises(Invalid, match=r"status.phase: unsupported value 'Gone'"):
        parse_object(namespace(status={"phase": "Gone"}))


def test_a_terminating_namespace_says_so():
    ns = parse_object(namespace(status={"phase": "Terminating"}))
    assert isinstance(ns, Namespace) and ns.terminating
