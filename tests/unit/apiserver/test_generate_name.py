"""Kubernetes' SimpleNameGenerator and the name rules around generateName."""

from __future__ import annotations

import itertools

import pytest

from peapod.api import parse_object
from peapod.api.manifest import refuse_generate_name_for_apply
from peapod.apiserver.admission import SUFFIX_ALPHABET, generate_name, with_generated_name
from peapod.errors import Invalid


def pod(**metadata) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_the_suffix_alphabet_is_kubernetes_utilrand():
    assert SUFFIX_ALPHABET == "bcdfghjklmnpqrstvwxz2456789"


def test_five_characters_from_the_alphabet_follow_the_prefix():
    picks = iter("bz279")
    assert generate_name("web-", choice=lambda alphabet: next(picks)) == "web-bz279"
    drawn = generate_name("web-")
    assert drawn.startswith("web-") and len(drawn) == 9
    assert set(drawn[4:]) <= set(SUFFIX_ALPHABET)


def test_a_long_prefix_is_cut_to_58_so_the_name_fits_63():
    cycle = itertools.cycle("b")
    name = generate_name("a" * 100, choice=lambda alphabet: next(cycle))
    assert name == "a" * 58 + "bbbbb"


def test_an_object_with_a_name_keeps_it():
    doc = pod(name="web", generateName="x-")
    assert with_generated_name(doc) is doc


def test_generate_name_alone_is_a_valid_manifest_and_gets_a_valid_name():
    assert parse_object(pod(generateName="web-")).metadata.name is None
    assert parse_object(with_generated_name(pod(generateName="web.v1-"))).metadata.name


@pytest.mark.parametrize("prefix", ["Web-", "web_", "-web", "web.v1_"])
def test_a_prefix_no_valid_name_can_start_with_is_refused(prefix):
    with pytest.raises(Invalid, match=f"metadata.generateName: invalid name {prefix!r}"):
        parse_object(pod(generateName=prefix))


def test_neither_name_nor_generate_name_is_refused_in_kubernetes_words():
    with pytest.raises(Invalid, match=r"metadata.name: required value: name or generateName is "
                                      r"required"):
        parse_object(pod())


def test_apply_refuses_an_object_whose_name_is_still_to_be_generated():
    with pytest.raises(Invalid, match=r"^from web-: cannot use generate name with apply$"):
        refuse_generate_name_for_apply(pod(generateName="web-"))
    refuse_generate_name_for_apply(pod(name="web", generateName="web-"))
