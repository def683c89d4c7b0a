"""kubectl's -o jsonpath templates and custom-columns, as client-go evaluates them."""

from __future__ import annotations

import pytest

from peapod.cli.jsonpath import Template, custom_columns
from peapod.errors import Invalid

LIST = {"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
     "spec": {"containers": [{"image": "i1"}, {"image": "i2"}]},
     "status": {"phase": "Running", "restartCount": 2, "ready": True,
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "PodScheduled", "status": "True"}]}},
    {"metadata": {"name": "b"}, "spec": {"containers": [{"image": "i3"}]},
     "status": {"phase": "Pending"}}]}


@pytest.mark.parametrize(("template", "printed"), [
    ("{.items[*].metadata.name}", "a b"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}',
     "a\tRunning\nb\tPending\n"),
    ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
    ("{.items[?(@.status.phase!='Running')].metadata.name}", "b"),
    ("{.items[?(@.status.restartCount>1)].metadata.name}", "a"),
    ("{.items[?(@.status.ready)].metadata.name}", "a"),
    ("{.items[*].metadata.labels.app\\.kubernetes\\.io/name}", "web"),
    ("{.items[0].metadata.labels['app.kubernetes.io/name']}", "web"),
    ("{..image}", "i1 i2 i3"),
    ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ("{.items[0].status.restartCount} {.items[0].status.ready}", "2 true"),
    ("{.items[1].metadata}", '{"name":"b"}'),
    ("name={.items[0].metadata.name}!", "name=a!"),
    ("{.items[0].nothing.here}", ""),  # --allow-missing-template-keys=true, kubectl's default
    ("{range .items[*]}{$.kind}/{@.metadata.name} {end}", "List/a List/b "),
])
def test_templates_print_what_kubectl_prints(template, printed) -> None:
    assert Template(template).render(LIST) == printed


@pytest.mark.parametrize(("template", "why"), [
    ("{.items[x]}", "invalid array index x"),
    ("{range .items[*]}{.a}", "range without end"),
    ("{end}", "not in range, nothing to end"),
    ("{.a", "unclosed action"),
    ("{.items[0}", "unterminated array"),
])
def test_a_bad_template_is_refused_naming_it(template, why) -> None:
    with pytest.raises(Invalid) as refused:
        Template(template)
    assert refused.value.message == f"error parsing jsonpath {template}, {why}"


def test_custom_columns_take_kubectls_relaxed_paths() -> None:
    columns = custom_columns("NAME:.metadata.name,IMAGES:spec.containers[*].image,"
                             "READY:{.status.conditions[?(@.type=='Ready')].status}")
    assert [header for header, _ in columns] == ["NAME", "IMAGES", "READY"]
    assert [[t.values(item) for _, t in columns] for item in LIST["items"]] == [
        [["a"], ["i1", "i2"], ["True"]], [["b"], ["i3"], []]]
    with pytest.raises(Invalid, match="expected <header>:<json-path-expr>"):
        custom_columns("NAME")
