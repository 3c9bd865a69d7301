"""What ISO 8601 times cost the controller's biggest documents, beside Unix seconds.

    scripts/bench times [--sizes 10000,100000] [--repeat 3]

For each size: the planner's status for a converged fleet (scripts/benchmarks/planner.py's
spec), with every machine `seen`, as `status/cluster.json`, and `control/intake.json` with a
record per machine. Measured, best of --repeat, with times written as ISO 8601 and (the
baseline, what was written before) as Unix seconds: encode + pretty JSON, and parse +
strict decode. Also the bare formatter and parser per call.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from planner import observe, spec_for

from controller.planner import Memory, plan
from controller.shell.intake_state import IntakeState, ReportRecord
from controller.status_document import ClusterStatus, ControllerInfo, Seen
from wire import codec
from wire.documents import Addresses, dumps_pretty, loads_object
from wire.errors import InvalidDocument
from wire.times import TimeForm, format_time, parse_time


def best(fn: Callable[[], object], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def documents(n: int) -> tuple[ClusterStatus, IntakeState]:
    spec = spec_for(n)
    now = time.time()
    memory = Memory()
    for _ in range(4):
        memory = plan(spec, observe(n, memory, now), memory, now, fence=1).memory
        now += 10
    p = plan(spec, observe(n, memory, now), memory, now, fence=1)
    seen = {
        m: Seen(i, now - i % 30 - 0.123456, now - i % 30, 300.0, Addresses("10.0.0.1"), "0.2.0")
        for i, m in enumerate(p.status.machines)
    }
    status = ClusterStatus(p.status, ControllerInfo("ctl", 1, 5), seen=seen)
    reports = {
        m: ReportRecord(f"e{i}", i, f"e{i}", now - i % 30, now - i % 30 - 0.2, "s" * 64)
        for i, m in enumerate(p.status.machines)
    }
    return status, IntakeState(reports=reports)


def run(n: int, repeat: int) -> None:
    status, intake = documents(n)
    cases: list[tuple[str, Encoder, Decoder]] = [
        (
            "status/cluster.json",
            lambda form: dumps_pretty(_status_value(status, form)),
            lambda raw: ClusterStatus.from_json(raw, where="s"),
        ),
        (
            "control/intake.json",
            lambda form: dumps_pretty(codec.encode(intake, times=form)),
            lambda raw: codec.decode(IntakeState, loads_object(raw, where="i"), "i"),
        ),
    ]
    for name, encode, decode in cases:
        row = [measure(form, encode, decode, repeat) for form in ("epoch", "iso")]
        print(f"{n:>7} machines | {name:<20} | " + " | ".join(row))


Encoder = Callable[[TimeForm], bytes]
Decoder = Callable[[bytes], object]


def measure(form: TimeForm, encode: Encoder, decode: Decoder, repeat: int) -> str:
    raw = encode(form)
    t_enc = best(lambda: encode(form), repeat)
    try:
        dec = f"{best(lambda: decode(raw), repeat):6.3f} s"
    except InvalidDocument:  # the codec's 10,000-key bound on one object
        dec = "refused"
    return f"{form:>5}: encode {t_enc:6.3f} s, decode {dec}, {len(raw) >> 10:>6} KiB"


def _status_value(status: ClusterStatus, form: TimeForm) -> dict[str, Any]:
    value: dict[str, Any] = codec.encode(status.status, times=form)
    value["seen"] = codec.encode(status.seen, times=form)
    value["controller"] = codec.encode(status.controller, times=form)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t = time.time()
    text = format_time(t)
    calls = 200_000
    fmt = min(timeit.repeat(lambda: format_time(t), number=calls, repeat=3)) / calls * 1e6
    par = min(timeit.repeat(lambda: parse_time(text, "x"), number=calls, repeat=3)) / calls * 1e6
    print(f"format_time {fmt:.2f} us/call, parse_time {par:.2f} us/call")
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args.repeat)


if __name__ == "__main__":
    main()
