"""Making sure a container's image is on the node: pull policy, pull back-off and its events.

This is Kubernetes' ``EnsureImageExists`` step by step, with its words, for a
container's image and for each of its pod's ``image`` volumes:

* ``Never``: the image must be present, else ``ErrImageNeverPull``.
* ``IfNotPresent`` and present: "Container image … already present on machine".
* otherwise pull, unless this pod's pull of this image is inside its
  back-off (10 s doubling to 5 min, keyed by pod uid and image, as
  Kubernetes keys it): then ``ImagePullBackOff`` with a ``BackOff`` event
  "Back-off pulling image …", and no request reaches the registry.
* a failed pull is a ``Failed`` event "Failed to pull image …: <why>", raises
  the back-off, and is ``ErrImagePull``.

One deliberate difference: with ``Always``, an image that is present locally
is used when the pull fails or is backing off, because peapod's machines are
often offline (Kubernetes would refuse to start the container). Pulls run one
at a time (``PodmanThreads.pull``).

A failure is raised as ``RuntimeFailure``; ``retry_at`` on it tells the
caller when the next attempt makes sense (the end of the pull back-off).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from peapod.api import Container, Pod
from peapod.bus.events import EventRecorder
from peapod.kubelet.backoff import Backoff
from peapod.kubelet.pullsecrets import RegistryAuth, matching
from peapod.kubelet.runtime import PodmanRuntime, RuntimeFailure, normalize_image
from peapod.kubelet.threads import PodmanThreads

log = structlog.get_logger("kubelet.images")

# (pod) -> (registry entries of its imagePullSecrets, names of those that could not be read)
PullSecrets = Callable[[Pod], Awaitable[tuple[list[RegistryAuth], list[str]]]]
IMAGE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
                           "InvalidImageName"})


# how long podman's "present" is taken as still true: a burst of pods of one image asks once
# (each question takes podman's storage lock while the other pods' containers are made);
# a container create that fails drops the answer at once (``forget``)
PRESENT_FOR_SECONDS = 10.0


class ImageFailure(RuntimeFailure):
    def __init__(self, reason: str, message: str, *, retry_at: float | None = None) -> None:
        super().__init__(reason, message)
        self.retry_at = retry_at


def pull_backoff_key(pod: Pod, image: str) -> str:
    return f"{pod.metadata.uid}_{image}"


class ImagePuller:
    def __init__(self, *, runtime: PodmanRuntime, threads: PodmanThreads,
                 events: EventRecorder, clock: Callable[[], float] = time.time,
                 backoff: Backoff | None = None, pull_secrets: PullSecrets | None = None,
                 on_backoff_change: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self.on_backoff_change = on_backoff_change or (lambda: None)
        self.pull_secrets = pull_secrets
        self.threads = threads
        self.events = events
        self.clock = clock
        self.backoff = backoff or Backoff()
        self._seen_present: dict[str, float] = {}  # image -> monotonic time podman had it

    def look_up(self, image: str) -> asyncio.Task[bool]:
        """Ask podman now whether ``image`` is present, for an ``ensure`` a moment later (the
        kubelet asks while podman makes the pod's sandbox)."""
        return asyncio.create_task(self.present(image))

    async def present(self, image: str) -> bool:
        """Whether podman has ``image``; a "yes" of the last few seconds is not asked again."""
        key = normalize_image(image)
        seen = self._seen_present.get(key)
        if seen is not None and time.monotonic() - seen < PRESENT_FOR_SECONDS:
            return True
        present = await self.threads.call(self.runtime.image_present, image)
        if present:
            self._seen_present[key] = time.monotonic()
        else:
            self._seen_present.pop(key, None)
        return present

    def forget(self, image: str) -> None:
        """Ask podman again next time (a container create failed: the image may be gone)."""
        self._seen_present.pop(normalize_image(image), None)

    async def ensure(self, pod: Pod, container: Container, *,
                     looked_up: asyncio.Task[bool] | None = None) -> None:
        """Return once the container's image and those of the pod's image volumes are present
        (Kubernetes pulls a pod's image volumes before any of its containers starts); raise
        ``ImageFailure`` otherwise. ``looked_up``: ``look_up`` of the container's image."""
        for volume in pod.spec.volumes or []:
            if volume.image is not None:
                await self.ensure_image(pod, volume.image.reference,
                                        volume.image.pull_policy or "IfNotPresent")
        await self.ensure_image(pod, container.image,
                                container.image_pull_policy or "IfNotPresent",
                                looked_up=looked_up)

    async def ensure_image(self, pod: Pod, image: str, policy: str, *,
                           looked_up: asyncio.Task[bool] | None = None) -> None:
        """Return once ``image`` is present under ``policy``; raise ``ImageFailure`` otherwise."""
        obj = pod.to_wire()
        present = await (looked_up or self.present(image))
        if policy == "Never" and not present:
            message = f'Container image "{image}" is not present with pull policy of Never'
            await self._event(obj, "ErrImageNeverPull", message, type="Warning")
            raise ImageFailure("ErrImageNeverPull", message)
        if present and policy in ("Never", "IfNotPresent"):
            await self._already_present(obj, image)
            return
        key = pull_backoff_key(pod, image)
        if self.backoff.in_backoff_since_update(key, now=self.clock()):
            if present:  # Always, offline: run the local copy rather than wait
                await self._already_present(obj, image)
                return
            entry = self.backoff.entry(key)
            message = f'Back-off pulling image "{image}"'
            await self._event(obj, "BackOff", message)
            raise ImageFailure("ImagePullBackOff", message,
                               retry_at=entry.last_update + entry.delay if entry else None)
        await self._pull(obj, pod, image, key=key, present=present)

    async def _pull(self, obj: dict[str, Any], pod: Pod, image: str, *, key: str,
                    present: bool) -> None:
        auths = await self._registry_auths(obj, pod, image)
        await self._event(obj, "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        for auth in auths:  # the matching pull secrets' entries in turn, else anonymously
            error = await self.threads.pull(self.runtime.pull_image, image, auth)
            if error is None:
                break
        took = time.monotonic() - started
        plog = log.bind(namespace=pod.metadata.namespace, name=pod.metadata.name,
                        uid=pod.metadata.uid, image=image)
        if error is None:
            self._seen_present[normalize_image(image)] = time.monotonic()
            if self.backoff.forget(key):
                self.on_backoff_change()
            plog.info("image_pulled", seconds=round(took, 3))
            await self._event(obj, "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s')
            return
        await self._event(obj, "Failed", f'Failed to pull image "{image}": {error}',
                          type="Warning")
        failed_at = self.clock()  # the back-off counts from the failure, not the attempt
        entry = self.backoff.next(key, failed_at, now=failed_at)
        self.on_backoff_change()
        plog.warning("image_pull_failed", error=error, backoff_seconds=entry.delay,
                     using_local_image=present)
        if present:  # Always, offline: the pull failed, the local copy runs
            await self._already_present(obj, image)
            return
        raise ImageFailure("ErrImagePull", f'failed to pull image "{image}": {error}')

    async def _registry_auths(self, obj: dict[str, Any], pod: Pod,
                              image: str) -> list[RegistryAuth | None]:
        if self.pull_secrets is None or not pod.spec.image_pull_secrets:
            return [None]
        auths, missing = await self.pull_secrets(pod)
        if missing:  # Kubernetes' words; the pull goes on without them
            await self._event(obj, "FailedToRetrieveImagePullSecret",
                              f"Unable to retrieve some image pull secrets ({', '.join(missing)}); "
                              "attempting to pull the image may not succeed.", type="Warning")
        return [*matching(normalize_image(image), auths)] or [None]

    async def _already_present(self, obj: dict[str, Any], image: str) -> None:
        # sent while the container is made: events about the pod keep their order
        self.events.post(obj, reason="Pulled",
                         message=f'Container image "{image}" already present on machine')

    async def _event(self, obj: dict[str, Any], reason: str, message: str, *,
                     type: str = "Normal") -> None:
        await self.events.record(obj, reason=reason, message=message, type=type)
