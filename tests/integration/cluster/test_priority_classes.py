"""PriorityClasses and the priority admission of pods, through the real ``peapod`` script
and the real apiserver over NATS.

The store is shared by the tests of the session, so every class made here is
deleted at the end (a global default left behind would change other tests' pods).
"""

from __future__ import annotations

import contextlib
import json
import uuid

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import Forbidden, Invalid, NotFound
from tests.integration.cluster.cli import cli_for


def _pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def _create_pod(admin, pod: dict) -> dict:
    return await request(admin, s.api("pods", "create"), {"object": pod, "namespace": "default"})


async def _delete_classes(admin, *names: str) -> None:
    for name in names:
        with contextlib.suppress(NotFound):
            await request(admin, s.api("priorityclasses", "delete"), {"name": name})


async def test_system_classes_exist_and_cannot_be_deleted(apiserver, tmp_path):
    peapod = cli_for(apiserver, tmp_path)
    got = await peapod("get", "pc")
    assert got.code == 0, got.err
    rows = [line.split() for line in got.out.splitlines()]
    assert rows[0] == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["system-node-critical"][1:3] == ["2000001000", "false"]
    assert by_name["system-cluster-critical"][1:3] == ["2000000000", "false"]
    refused = await peapod("delete", "priorityclass", "system-node-critical")
    assert refused.code == 1
    assert refused.err.strip() == (
        'Error from server (Forbidden): priorityclasses.scheduling.k8s.io "system-node-critical" '
        "is forbidden: this is a system priority class and cannot be deleted")
    assert (await peapod("get", "pc", "system-node-critical")).code == 0


async def test_create_describe_and_admission_of_pods(apiserver, tmp_path):
    peapod, admin = cli_for(apiserver, tmp_path), apiserver["admin"]
    high, low = f"high-{uuid.uuid4().hex[:6]}", f"low-{uuid.uuid4().hex[:6]}"
    try:
        made = await peapod("create", "priorityclass", high, "--value=1000",
                            "--description=for the important ones")
        assert (made.code, made.out) == (0, f"priorityclass.scheduling.k8s.io/{high} created\n"), \
            made.err
        manifest = (f"apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n"
                    f"  name: {low}\nvalue: -5\npreemptionPolicy: Never\n")
        applied = await peapod("apply", "-f", "-", stdin=manifest)
        assert applied.out == f"priorityclass.scheduling.k8s.io/{low} created\n", applied.err
        described = await peapod("describe", "pc", high)
        lines = [" ".join(line.split()) for line in described.out.splitlines()]
        assert lines[:5] == [f"Name: {high}", "Value: 1000", "GlobalDefault: false",
                             "PreemptionPolicy: PreemptLowerPriority",
                             "Description: for the important ones"]
        # the value never changes (Kubernetes' ValidatePriorityClassUpdate)
        changed = await peapod("apply", "-f", "-",
                               stdin=manifest.replace("value: -5", "value: 7"))
        assert changed.code == 1
        assert "value: Forbidden: may not be changed in an update." in changed.err

        pod = await _create_pod(admin, _pod(f"p-{high}", priorityClassName=high))
        assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == \
            (1000, "PreemptLowerPriority")
        pod = await _create_pod(admin, _pod(f"p-{low}", priorityClassName=low))
        assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (-5, "Never")
        plain = await _create_pod(admin, _pod(f"plain-{high}"))
        assert plain["spec"]["priority"] == 0 and "priorityClassName" not in plain["spec"]
        described = await peapod("describe", "pod", f"p-{high}")
        lines = [" ".join(line.split()) for line in described.out.splitlines()]
        assert lines[2:4] == ["Priority: 1000", f"Priority Class Name: {high}"]
        # apply of the same manifest (without the admitted fields) is unchanged
        again = await peapod("apply", "-f", "-",
                             stdin=json.dumps(_pod(f"p-{high}", priorityClassName=high)))
        assert again.out == f"pod/p-{high} unchanged\n", again.err
    finally:
        for name in (f"p-{high}", f"p-{low}", f"plain-{high}"):
            await peapod("delete", "pod", name, "--ignore-not-found", "--wait=false")
        await _delete_classes(admin, high, low)


async def test_pods_are_refused_an_unknown_class_or_a_priority_that_disagrees(apiserver):
    admin = apiserver["admin"]
    name = f"nope-{uuid.uuid4().hex[:6]}"
    try:
        await _create_pod(admin, _pod(name, priorityClassName="no-such-class"))
    except Forbidden as exc:
        assert exc.message == (f'pods "{name}" is forbidden: no PriorityClass with name '
                               "no-such-class was found")
    else:
        raise AssertionError("an unknown class was admitted")
    try:
        await _create_pod(admin, _pod(name, priority=10))
    except Forbidden as exc:
        assert exc.message == (f'pods "{name}" is forbidden: the integer value of priority (10) '
                               "must not be provided in pod spec; priority admission controller "
                               "computed 0 from the given PriorityClass name")
    else:
        raise AssertionError("a priority that disagrees was admitted")
    pods = await request(admin, s.api("pods", "list"), {"namespace": "default"})
    assert name not in [p["metadata"]["name"] for p in pods]  # nothing half-written


async def test_one_global_default_gives_pods_its_name_and_value(apiserver, tmp_path):
    peapod, admin = cli_for(apiserver, tmp_path), apiserver["admin"]
    first, second = (f"default-{i}-{uuid.uuid4().hex[:6]}" for i in range(2))
    pod_name = f"defaulted-{first}"
    try:
        made = await peapod("create", "pc", first, "--value=42", "--global-default")
        assert made.code == 0, made.err
        refused = await peapod("create", "pc", second, "--value=43", "--global-default=true")
        assert refused.code == 1
        assert refused.err.strip() == (
            f'Error from server (Forbidden): priorityclasses.scheduling.k8s.io "{second}" is '
            f"forbidden: PriorityClass {first} is already marked as default. Only one default "
            "can exist")
        pod = await _create_pod(admin, _pod(pod_name))
        assert (pod["spec"]["priorityClassName"], pod["spec"]["priority"]) == (first, 42)
        too_high = await peapod("create", "pc", second, "--value=1000000001")
        assert too_high.code == 1
        assert ("value: Forbidden: maximum allowed value of a user defined priority is "
                "1000000000") in too_high.err
        bad = await peapod("create", "pc", second, "--preemption-policy=Sometimes")
        assert bad.code == 1 and "preemptionPolicy" in bad.err
        assert (await peapod("get", "pc", second)).code == 1  # nothing stored
    finally:
        await peapod("delete", "pod", pod_name, "--ignore-not-found", "--wait=false")
        await _delete_classes(admin, first, second)


async def test_a_reserved_name_is_refused(apiserver):
    try:
        await request(apiserver["admin"], s.api("priorityclasses", "create"), {"object": {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "system-mine"}, "value": 5}})
    except Invalid as exc:
        assert ("metadata.name: Forbidden: priority class names with 'system-' prefix are "
                "reserved for system use only. error: system-mine is not a known system "
                "priority class") in exc.message
    else:
        raise AssertionError("a system- name was accepted")


async def test_pod_admission_reads_the_classes_from_memory(apiserver):
    """A pod create opens no JetStream consumer (which would need the meta leader, gone for a
    few seconds after its server dies): the apiserver keeps the classes in an informer.
    The positive control is a list of the classes, which does open one."""
    admin = apiserver["admin"]
    opened: list[str] = []

    async def record(msg) -> None:
        if b"priorityclasses" in msg.data:
            opened.append(msg.subject)

    sub = await admin.subscribe("$JS.API.CONSUMER.>", cb=record)
    names = [f"mem-{uuid.uuid4().hex[:6]}" for _ in range(4)]
    try:
        await _create_pod(admin, _pod(names[0], nodeSelector={"none": "none"}))  # cache synced
        await admin.flush()
        opened.clear()
        for name in names[1:]:
            created = await _create_pod(admin, _pod(name, nodeSelector={"none": "none"}))
            assert created["spec"]["priority"] == 0
        await admin.flush()
        assert opened == []
        await request(admin, s.api("priorityclasses", "list"), {})
        await admin.flush()
        assert opened, "the control: a list of the classes opens a consumer that is seen"
    finally:
        await sub.unsubscribe()
        for name in names:
            with contextlib.suppress(NotFound):
                await request(admin, s.api("pods", "delete"),
                              {"namespace": "default", "name": name, "gracePeriodSeconds": 0})
