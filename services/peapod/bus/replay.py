"""Reading a stream (or the last message per subject) up to "now", in one consumer.

A list is a replay of an ordered consumer that stops at the first message
with nothing pending behind it; this is how the apiserver lists objects from
the KV stream and how the CLI reads recent events. The consumer is ephemeral
and deleted on return, so a list leaves nothing behind on the server.
"""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy


async def read_all(js: JetStreamContext, *, stream: str, subject: str,
                   last_per_subject: bool = False, timeout: float = 5) -> list[Msg]:
    policy = DeliverPolicy.LAST_PER_SUBJECT if last_per_subject else DeliverPolicy.ALL
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True,
                             deliver_policy=policy)
    messages: list[Msg] = []
    try:
        info = await sub.consumer_info()
        # Some messages may already sit in our buffer: count them as well.
        more = (info.num_pending or 0) + (info.delivered.consumer_seq or 0
                                          if info.delivered else 0) > 0
        while more:
            msg = await sub.next_msg(timeout=timeout)
            messages.append(msg)
            more = msg.metadata.num_pending > 0
    finally:
        await sub.unsubscribe()
    return messages
