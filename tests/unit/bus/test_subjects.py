"""Names as subject tokens: injective, reversible, one token each, filters stay exact."""

from __future__ import annotations

import pytest

from peapod.bus import subjects as s

NAMES = ["web", "web.v1", "a.b.c", "web-v1", "web_v1", "web=v1", "web=5Fv1", "a..b", "A",
         "x*", "x>", "x y", "ü", "_", "=", "-", "1.2.3.4"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_is_one_token_that_reads_back_as_the_same_name(name):
    token = s.token(name)
    assert "." not in token and not set(token) & {"*", ">", " ", "\t"}
    assert s.name_of(token) == name


def test_no_two_names_share_a_token():
    tokens = [s.token(name) for name in NAMES]
    assert len(set(tokens)) == len(NAMES)


def test_dns_names_read_naturally():
    assert s.token("web") == "web"
    assert s.token("web.v1") == "web_v1"
    assert s.kv_key("pods", "default", "web.v1") == "pods.default.web_v1"
    assert s.node_partition("node-a", "default", "web.v1") == "peapod.node.node-a.pods.default.web_v1"


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "=4", "=zz", "=41", "a b", "=FF"])
def test_a_string_no_name_encodes_to_is_refused(bad):
    with pytest.raises(ValueError):
        s.name_of(bad)


def test_an_empty_name_has_no_token():
    with pytest.raises(ValueError):
        s.token("")


def test_keys_parse_back_into_kind_namespace_and_name():
    assert s.parse_kv_key(s.kv_key("pods", "qos-example", "web.v1")) == ("pods", "qos-example", "web.v1")
    assert s.parse_kv_key(s.kv_key("nodes", None, "pi-1")) == ("nodes", None, "pi-1")
    assert s.parse_kv_key(s.kv_key("namespaces", None, "qos-example")) == (
        "namespaces", None, "qos-example")
    with pytest.raises(ValueError):
        s.parse_kv_key("pods.default.web.v1")  # a key written before names were encoded


def test_a_dotted_node_name_cannot_reach_into_another_nodes_partition():
    # "pi.x" was four tokens before; now it is the token "pi_x", outside "peapod.node.pi.>"
    subject = s.node_partition("pi.x", "default", "web")
    assert subject.startswith("peapod.node.pi_x.")
    assert not subject.startswith(s.node_partition_all("pi").removesuffix(">"))


def test_a_node_api_subject_gives_back_its_node():
    assert s.node_of_api(s.node_api("node-a", "status")) == "node-a"


def test_prefixes_and_filters_cover_one_namespace_or_all():
    assert s.kv_prefix("pods") == "pods."
    assert s.kv_prefix("pods", "qos-example") == "pods.qos-example."
    assert s.watch_all("pods") == "peapod.watch.pods.>"
    assert s.watch_all("pods", "default") == "peapod.watch.pods.default.>"
    assert s.watch("namespaces", None, "qos-example") == "peapod.watch.namespaces._.qos-example"
    assert s.events_all() == "peapod.events.>"
    assert s.events_all("default") == "peapod.events.default.>"
