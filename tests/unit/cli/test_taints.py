"""kubectl's taint parsing and rules (``cmd/taint``), as pure functions."""

from __future__ import annotations

import pytest

from peapod.api.node import Node, Taint
from peapod.cli.taints import Removal, parse_taints, reorganize, split_words
from peapod.errors import Invalid


def node(*taints: Taint) -> Node:
    return Node.model_validate({"metadata": {"name": "n1"},
                                "spec": {"taints": [t.to_wire() for t in taints] or None}})


def test_parse_adds_and_removals():
    adds, removals = parse_taints(["dedicated=gpu:NoSchedule", "x:NoExecute", "a:PreferNoSchedule-",
                                   "b-", "c=v:NoSchedule-"])
    assert [(t.key, t.value, t.effect) for t in adds] == [("dedicated", "gpu", "NoSchedule"),
                                                         ("x", None, "NoExecute")]
    assert removals == [Removal("a", "PreferNoSchedule"), Removal("b", None),
                        Removal("c", "NoSchedule")]


@pytest.mark.parametrize(("spec", "message"), [
    ("k=v:Sometimes", "invalid taint effect: Sometimes, unsupported taint effect"),
    ("k=v", "invalid taint spec: k=v"),
    ("k", "invalid taint spec: k"),
    ("a:b:NoSchedule", "invalid taint spec: a:b:NoSchedule"),
    ("k=a=b:NoSchedule", "invalid taint spec: k=a=b:NoSchedule"),
    ("-bad:NoSchedule", "invalid taint spec: -bad:NoSchedule, taint.key: invalid taint key"),
    ("k=not ok:NoSchedule", "invalid taint spec: k=not ok:NoSchedule, taint.value: invalid"),
])
def test_bad_specs_are_refused_as_kubectl_does(spec, message):
    with pytest.raises(Invalid) as exc:
        parse_taints([spec])
    assert exc.value.message.startswith(message), exc.value.message


def test_modify_and_remove_together_and_duplicates_are_refused():
    with pytest.raises(Invalid, match=r'can not both modify and remove the following taint\(s\) '
                       r'in the same command: \{"k":"NoSchedule"\}'):
        parse_taints(["k=v:NoSchedule", "k:NoSchedule-"])
    with pytest.raises(Invalid, match=r'\{"k":""\}'):
        parse_taints(["k=v:NoSchedule", "k-"])
    parse_taints(["k=v:NoSchedule", "k:NoExecute-"])  # another effect: no conflict
    with pytest.raises(Invalid, match="duplicated taints with the same key and effect"):
        parse_taints(["k=a:NoSchedule", "k=b:NoSchedule"])


def test_reorganize_words_and_overwrite():
    gpu = Taint(key="gpu", value="a", effect="NoSchedule")
    word, taints = reorganize(node(), [gpu], [], overwrite=False)
    assert (word, taints) == ("tainted", [gpu])
    with pytest.raises(Invalid, match=r"^node n1 already has gpu taint\(s\) with same effect\(s\) "
                       r"and --overwrite is false$"):
        reorganize(node(gpu), [Taint(key="gpu", value="b", effect="NoSchedule")], [],
                   overwrite=False)
    other = Taint(key="gpu", value="b", effect="NoSchedule")
    assert reorganize(node(gpu), [other], [], overwrite=True) == ("modified", [other])
    same_key = Taint(key="gpu", effect="NoExecute")
    assert reorganize(node(gpu), [same_key], [], overwrite=False) == ("tainted", [same_key, gpu])
    assert reorganize(node(gpu, same_key), [], [Removal("gpu", None)],
                      overwrite=False) == ("untainted", [])
    assert reorganize(node(gpu, same_key), [], [Removal("gpu", "NoExecute")],
                      overwrite=False) == ("untainted", [gpu])
    x = Taint(key="x", effect="NoSchedule")
    assert reorganize(node(gpu), [x], [Removal("gpu", None)], overwrite=False) == ("modified", [x])


def test_removing_a_missing_taint_is_an_error():
    with pytest.raises(Invalid, match=r'^taint "gpu:NoSchedule" not found$'):
        reorganize(node(), [], [Removal("gpu", "NoSchedule")], overwrite=False)
    with pytest.raises(Invalid, match=r'^taint "gpu" not found$'):
        reorganize(node(), [], [Removal("gpu", None)], overwrite=False)


def test_names_come_before_taints():
    assert split_words(["a", "b", "k=v:NoSchedule", "x-"]) == (["a", "b"], ["k=v:NoSchedule", "x-"])
    with pytest.raises(Invalid, match="all resources must be specified before taint changes: b"):
        split_words(["a", "k:NoSchedule", "b"])
