"""Writing `status/cluster.json` (and `status/rollouts/`) at the end of a cycle.

The document is rewritten only when something other than its timestamps changed
(controller.shell.records: `at`, each machine's `age` and the controller's `cycle` aside),
so a quiet cycle writes nothing. Building it is the cost at scale (encoding every machine's
status and `seen` entry: ~0.2 s CPU at 10,000 machines), so before building it the writer
compares what the document is made of with what it was made of when last written or
found unchanged: the planner's status (timestamps aside), the intake records, the
snapshots, the lease holder and token, and the trust sections. Those are the same objects
from cycle to cycle when nothing happened (the intake keeps unchanged records and
snapshots), so the comparison is mostly identity checks. Anything different and the
document is built and digested as before; its digest still decides whether it is written.

Readers never rely on the document's `at` to judge freshness: the last cycle is the
lease's `renewed_at` and a machine's age comes from `seen` (controller.operations.views
Freshness), so skipping the build changes nothing they see.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from controller.planner.model import MachineObservation, Observed, Status
from controller.shell import records
from controller.shell.encoding import Reuse
from controller.shell.intake_state import IntakeState, ReportRecord
from controller.shell.publish import publish_rollouts
from controller.shell.trust import Trust
from wire import codec
from wire.layout import STATUS_CLUSTER, MachineId
from wire.store import Store

_GETTERS: dict[type, Callable[[Any], Any]] = {}


def _stable(machine_status: Any) -> Any:
    """A machine's status fields without the volatile ones (records.MACHINE_VOLATILE)."""
    kind = type(machine_status)
    getter = _GETTERS.get(kind)
    if getter is None:
        names = [
            f.name
            for f in dataclasses.fields(machine_status)
            if f.name not in records.MACHINE_VOLATILE
        ]
        getter = _GETTERS[kind] = operator.attrgetter(*names)
    return getter(machine_status)


def _without_volatile(machine_status: Any) -> dict[str, Any]:
    entry: dict[str, Any] = codec.encode(machine_status)
    for name in records.MACHINE_VOLATILE:
        entry.pop(name, None)
    return entry


def _seen(rec: ReportRecord, found: MachineObservation | None) -> Any:
    entry = records.seen_entry(rec, found)
    return None if entry is None else codec.encode(entry)


@dataclass(frozen=True)
class StatusInputs:
    """What status/cluster.json is built from, volatile fields aside; equal inputs give a
    document with the same digest (unequal ones may too: then it is built and compared)."""

    status: Status  # `at` and `machines` blanked
    machines: tuple[tuple[str, Any], ...]
    reports: Mapping[str, Any]
    foreign: Mapping[str, str]
    snapshots: Mapping[str, Any]
    holder: str
    token: int
    sections: Mapping[str, Any]

    def same_but_heartbeats(self, other: StatusInputs) -> bool:
        """Equal apart from the intake records and snapshots (which a heartbeat changes:
        the caller knows from the intake that only their liveness fields did)."""
        return (
            self.status == other.status
            and self.machines == other.machines
            and self.foreign == other.foreign
            and self.holder == other.holder
            and self.token == other.token
            and self.sections == other.sections
        )

    @classmethod
    def of(
        cls,
        status: Status,
        state: IntakeState,
        observed: Observed,
        *,
        holder: str,
        token: int,
        sections: Mapping[str, Any],
    ) -> StatusInputs:
        return cls(
            status=replace(status, at=0.0, machines={}),
            machines=tuple((m, _stable(ms)) for m, ms in status.machines.items()),
            reports=state.reports,
            foreign=state.foreign,
            snapshots={m: obs.snapshot for m, obs in observed.machines.items()},
            holder=holder,
            token=token,
            sections=sections,
        )


class StatusWriter:
    """Keeps, between cycles, what the status was last built from and the rollouts' digests."""

    def __init__(self, store: Store, trust: Trust, holder: str) -> None:
        self.store = store
        self.trust = trust
        self.holder = holder
        self.rollout_digests: dict[str, str] = {}  # service -> last status/rollouts/ body
        self._last: tuple[StatusInputs, str] | None = None  # inputs, digest of their document
        self.built = 0  # documents built (a benchmark and test counter)
        self._machines = Reuse()  # machine -> its `machines` entry, volatile fields aside
        self._seen = Reuse()  # machine -> its `seen` entry
        self._written_at = float("-inf")  # when this process last wrote the document
        self._liveness_only = True  # every change since it was written was a heartbeat's
        self.deferred = 0  # cycles whose heartbeats waited for the next write (a counter)

    def document(
        self,
        status: Status,
        state: IntakeState,
        observed: Observed,
        *,
        token: int,
        cycle: int,
        sections: Mapping[str, Any],
    ) -> tuple[dict[str, Any], str]:
        """`records.status_document` with the trust sections, and its `status_digest`; each
        machine's `machines` and `seen` entries encoded once per change (controller.shell
        .encoding), the rest as records builds it."""
        doc = records.status_document(
            replace(status, machines={}),
            replace(state, reports={}),
            replace(observed, machines={}),
            holder=self.holder,
            token=token,
            cycle=cycle,
        )
        stable: dict[str, Any] = {}
        machines: dict[str, Any] = {}
        for m, ms in status.machines.items():
            entry = stable[m] = self._machines.one(m, _stable(ms), partial(_without_volatile, ms))
            machines[m] = {**entry, **{k: getattr(ms, k) for k in records.MACHINE_VOLATILE}}
        self._machines.done()
        seen: dict[str, Any] = {}
        rejected: dict[str, Any] = {}
        for m, rec in state.reports.items():
            found = observed.machines.get(MachineId(m))
            made_of = (rec, found.snapshot if found is not None else None)
            entry = self._seen.one(m, made_of, partial(_seen, rec, found))
            if entry is not None:
                seen[m] = entry
            if rec.rejected:
                rejected[m] = codec.encode(records.rejected_entry(rec))
        self._seen.done()
        refusals: dict[str, Any] = {}
        for m, obs in observed.machines.items():
            said = records.refusals_entry(obs.snapshot)
            if said is not None:
                refusals[m] = codec.encode(said)
        doc.update(machines=machines, seen=seen, rejected=rejected, agent_refusals=refusals)
        doc.update(sections)
        return doc, records.status_digest(doc, stable)

    def write(
        self,
        status: Status,
        observed: Observed,
        state: IntakeState,
        *,
        token: int,
        cycle: int,
        sections: Mapping[str, Any],
        rollouts: bool,
        can_act: Callable[[], bool],
        written: list[str],
        liveness_only: bool = False,
        now: float = 0.0,
        every: float = 0.0,
    ) -> str:
        """Write what changed; the digest of status/cluster.json as it now stands.

        `liveness_only`: the intake says this cycle's reports changed nothing but heartbeats
        (docs/controller.md#heartbeats-between-writes). When every change since the document
        was last written is of that kind, it is written again only once `every` seconds
        have passed since (`now`): the `seen` times it shows are then at most that old."""
        if rollouts:
            written += publish_rollouts(self.store, status.rollouts, self.rollout_digests, can_act)
        inputs = StatusInputs.of(
            status, state, observed, holder=self.holder, token=token, sections=sections
        )
        last = self._last
        if last is not None and last[1] == state.status_digest and last[0] == inputs:
            return state.status_digest  # nothing the document shows changed: not built
        self._liveness_only = self._liveness_only and liveness_only
        if (
            last is not None
            and last[1] == state.status_digest
            and self._liveness_only
            and now - self._written_at < every
            and last[0].same_but_heartbeats(inputs)
        ):
            self.deferred += 1
            return state.status_digest  # heartbeats only: shown at the next write
        self.built += 1
        doc, digest = self.document(
            status, state, observed, token=token, cycle=cycle, sections=sections
        )
        if digest == state.status_digest:
            self._last = (inputs, digest)
            self._liveness_only = True
            return digest
        if not can_act():
            return state.status_digest
        self.store.put(STATUS_CLUSTER, self.trust.sign_status(doc))
        written.append(STATUS_CLUSTER)
        self._last = (inputs, digest)
        self._written_at, self._liveness_only = now, True
        return digest


__all__ = ["StatusInputs", "StatusWriter"]
