"""Lists larger than one NATS message: pages (``limit``/``continue``), and a clear error,
never a hang, for a reply or a request that would not fit (real nats-server, 1 MiB
``max_payload``)."""

from __future__ import annotations

import json
import time

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import list_in_pages, request
from peapod.errors import Invalid, TooLarge
from tests.integration.cluster.cli import cli_for

PODS = 40
PAD = 32 * 1024  # 40 pods of 32 KiB: 1.3 MB, more than one message carries


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "big"}, "annotations": {"pad": "x" * PAD}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}


@pytest.fixture
async def many(apiserver):
    admin = apiserver["admin"]
    for i in range(PODS):
        await request(admin, s.api("pods", "create"), {"object": pod(f"big-{i:02}")})
    return apiserver


async def test_a_list_too_large_for_one_message_comes_in_pages(many, tmp_path):
    admin = many["admin"]
    started = time.monotonic()
    with pytest.raises(TooLarge, match="over the 1048576 bytes one NATS message may carry"):
        await request(admin, s.api("pods", "list"), {"namespace": "default"})
    assert time.monotonic() - started < 9, "the error came from the reply, not a timeout"

    first = await request(admin, s.api("pods", "list"), {"namespace": "default", "limit": 500})
    assert 0 < len(first["items"]) < PODS  # cut by size, not by the limit
    assert first["metadata"]["remainingItemCount"] == PODS - len(first["items"])
    everything = await list_in_pages(admin, s.api("pods", "list"), {"namespace": "default"})
    assert [p["metadata"]["name"] for p in everything] == [f"big-{i:02}" for i in range(PODS)]
    small = await request(admin, s.api("pods", "list"), {"namespace": "default", "limit": 5,
                                                         "labelSelector": "app=big"})
    assert len(small["items"]) == 5

    with pytest.raises(Invalid, match="continue key is not valid"):
        await request(admin, s.api("pods", "list"), {"namespace": "default", "continue": "junk"})

    out = await cli_for(many, tmp_path)("get", "pods", "--no-headers")
    assert out.code == 0, out.err
    assert len(out.out.splitlines()) == PODS


async def test_a_request_over_max_payload_is_refused_at_once_and_stores_nothing(apiserver):
    admin = apiserver["admin"]
    huge = pod("huge")
    huge["metadata"]["annotations"]["pad"] = "x" * (1024 * 1024)
    started = time.monotonic()
    with pytest.raises(TooLarge, match="nothing sent on"):
        await request(admin, s.api("pods", "create"), {"object": huge})
    assert time.monotonic() - started < 5
    assert await request(admin, s.api("pods", "list"), {"namespace": "default"}) == []


async def test_get_lists_in_pages_of_chunk_size(apiserver, tmp_path):
    admin = apiserver["admin"]
    for i in range(7):
        await request(admin, s.api("pods", "create"), {"object": {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}})
    peapod = cli_for(apiserver, tmp_path)
    asked = await admin.subscribe(s.api("pods", "list"))  # a copy of each list request
    await admin.flush()
    # 7 pods in pages of 2 are 4 requests, each but the first continuing; 0 is no limit
    for size, pages in (("2", 4), ("0", 1), ("500", 1)):
        out = await peapod("get", "pods", "--chunk-size", size, "-o", "name")
        assert out.code == 0, out.err
        assert out.out.split() == [f"pod/p{i}" for i in range(7)]
        await admin.flush()  # every request the CLI sent has reached this connection
        requests = [json.loads((await asked.next_msg(timeout=5)).data) for _ in range(pages)]
        assert asked.pending_msgs == 0, f"more than {pages} list requests for --chunk-size {size}"
        assert [r["limit"] for r in requests] == [int(size)] * pages, requests
        assert [bool(r.get("continue")) for r in requests] == [False] + [True] * (pages - 1)
    await asked.unsubscribe()
    refused = await peapod("get", "pods", "--chunk-size", "-1")
    assert refused.code == 1 and "is not a non-negative integer" in refused.err  # kubectl: 1


async def test_a_plain_list_from_an_apiserver_before_pages_is_taken_whole(apiserver):
    """An apiserver older than pages ignores ``limit`` and answers a plain list; the client
    takes it as the whole list instead of calling it malformed. The old apiserver is played
    by a responder on the real nats-server (this apiserver answers in pages)."""
    admin = apiserver["admin"]
    subject = s.api("widgets", "list")
    asked: list[bytes] = []

    async def old_apiserver(msg) -> None:
        asked.append(msg.data)
        await msg.respond(json.dumps({"result": [{"metadata": {"name": "a"}},
                                                 {"metadata": {"name": "b"}}]}).encode())

    sub = await admin.subscribe(subject, cb=old_apiserver)
    try:
        items = await list_in_pages(admin, subject, {}, chunk_size=1)
    finally:
        await sub.unsubscribe()
    assert [item["metadata"]["name"] for item in items] == ["a", "b"]
    assert len(asked) == 1 and json.loads(asked[0])["limit"] == 1
