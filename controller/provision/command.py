"""The `command` provisioner: a local program that starts machines.

The request goes to the program's stdin as JSON:
    {"service": "media", "count": 2, "target": 6, "reason": "...", "request_id": "..."}
and the program answers on stdout with JSON naming what it started:
    {"started": ["media-7", "media-8"], "detail": "optional text"}
A non-zero exit, a timeout or an answer that is not that JSON is a ProvisionError that
names the command and quotes the end of its stderr. The program should deduplicate on
`request_id` if it can be called again for the same request.
"""

from __future__ import annotations

import subprocess

import orjson

from controller.provision import ProvisionError, ProvisionRequest, ProvisionResult

_TAIL = 500


class CommandProvisioner:
    kind = "command"

    def __init__(self, argv: list[str], *, timeout: float = 60.0) -> None:
        self.argv = list(argv)
        self.timeout = timeout

    def provision(self, request: ProvisionRequest) -> ProvisionResult:
        name = self.argv[0]
        try:
            done = subprocess.run(
                self.argv,
                input=orjson.dumps(request.to_json()),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ProvisionError(f"provisioner command {name!r} not found") from None
        except subprocess.TimeoutExpired:
            raise ProvisionError(
                f"provisioner command {name!r} did not finish within {self.timeout:g}s"
            ) from None
        stderr = done.stderr.decode(errors="replace").strip()[-_TAIL:]
        if done.returncode != 0:
            raise ProvisionError(
                f"provisioner command {name!r} exited {done.returncode}: {stderr or '(no stderr)'}"
            )
        try:
            answer = orjson.loads(done.stdout)
        except orjson.JSONDecodeError:
            raise ProvisionError(
                f"provisioner command {name!r} answered {done.stdout[:80]!r}; expected JSON "
                '{"started": [...]} on stdout'
            ) from None
        started = answer.get("started") if isinstance(answer, dict) else None
        if not isinstance(started, list) or not all(isinstance(s, str) for s in started):
            raise ProvisionError(
                f'provisioner command {name!r}: answer needs "started": a list of strings'
            )
        detail = answer.get("detail", "")
        return ProvisionResult(
            request.request_id, tuple(started), detail if isinstance(detail, str) else ""
        )
