"""Digests of desired documents: what a document asks for, without generation, fence,
times or revision. The planner rewrites a document only when its digest changes (or it
nears expiry), and computes the shared part once per service variant."""

from __future__ import annotations

from wire import codec
from wire.codec import JsonValue
from wire.documents import Desired
from wire.signing import digest


def content_digest(doc: Desired) -> str:
    """Digest of what a desired document asks for, without generation/fence/times/revision.

    Two documents with the same content digest ask the machine for the same thing; the
    planner rewrites a document only when this changes or it is near expiry. It is built
    in two steps (the part many machines share, then the machine's own part) so the
    planner can compute it once per service variant.
    """
    return digests(doc)[1]


def digests(doc: Desired) -> tuple[str, str]:
    """(variant digest, content digest) of a desired document."""
    shared = variant_digest(
        service=doc.service,
        mode=doc.mode,
        version=doc.version,
        config=doc.config,
        peers=codec.encode(doc.peers),
    )
    return shared, machine_digest(doc.machine, shared, codec.encode(doc.drain))


def variant_digest(
    *, service: str | None, mode: str, version: str | None, config: JsonValue, peers: JsonValue
) -> str:
    return digest(
        {"config": config, "mode": mode, "peers": peers, "service": service, "version": version}
    )


def machine_digest(machine: str, variant: str, drain: JsonValue = None) -> str:
    return digest({"drain": drain, "machine": machine, "variant": variant})
