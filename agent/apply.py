"""Apply a verified desired document as one all-or-nothing transaction (docs/security.md#crash-safe-apply).

For the service the document names: render files and run each changed file's `check` on a
staged copy before anything changes (`agent.staging`: a template error or a refused config
raises here, and nothing that runs is touched), then switch the changed files in, run
`install` when the version changes, then `restart` (version change) or `reload` (files
changed), or `stop` when the mode stops the service, then make the supervised process
match. Every other configured service is stopped (a machine runs one service at a time).
If any step fails: restore the files written so far, re-run the hooks and the process for
the last-known-good document, and raise ApplyError with what failed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import RUNNING_MODES, AgentConfig, ServiceConfig
from agent.drivers import ApplyError, Target
from agent.drivers.commands import run_hook
from wire.documents import Desired
from wire.logs import Log
from wire.secret_box import has_secrets

if TYPE_CHECKING:  # imported where used: a steady cycle renders no file, and a machine
    # without a supervised process never needs the supervisor
    from agent.drivers.files import FileChange, FilesDriver
    from agent.drivers.process import ProcessDriver
    from agent.staging import Staged

log = Log(__name__)


def target_for(cfg: AgentConfig, service: str, doc: Desired | None) -> Target:
    svc = cfg.services.get(service, ServiceConfig())
    if doc is None or doc.service != service:
        return Target(cfg.machine, service, "deactivated", None, {}, None, svc.port, cfg.state_dir)
    if has_secrets(doc.config):  # decrypted and handed over only as the config says
        from agent.secret_files import materialize

        config, env = materialize(cfg, service, doc)
        return Target(
            cfg.machine, service, doc.mode, doc.version, config, doc, svc.port, cfg.state_dir, env
        )
    return Target(
        cfg.machine, service, doc.mode, doc.version, doc.config, doc, svc.port, cfg.state_dir
    )


def last_good_target(cfg: AgentConfig, service: str, doc: Desired | None) -> Target:
    """`target_for` a document already applied. Its secrets may no longer decrypt: they were
    encrypted for the key before a rotation (docs/security.md#key-rotation). Its mode and
    version still decide the hooks and the probes, so they go on without the secrets, and
    the agent keeps reporting and applying with its new key."""
    try:
        return target_for(cfg, service, doc)
    except ApplyError:
        if doc is None:
            raise
        from dataclasses import replace

        from wire.secret_box import map_secrets

        bare = replace(doc, config=map_secrets(doc.config, lambda _p, _t: None))
        return target_for(cfg, service, bare)


class Applier:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg

    @functools.cached_property
    def procs(self) -> ProcessDriver:
        from agent.drivers.process import ProcessDriver

        return ProcessDriver(Path(self.cfg.state_dir))

    @functools.cached_property
    def files(self) -> FilesDriver:
        from agent.drivers.files import FilesDriver

        return FilesDriver(Path(self.cfg.state_dir))

    def apply(self, new: Desired, old: Desired | None) -> None:
        """Apply `new` over `old` (the last-known-good), or restore `old` and raise."""
        if new.service is not None and new.service not in self.cfg.services:
            raise ApplyError(
                f"desired service {new.service!r} has no entry under services in the agent "
                "config; add one saying how to apply it"
            )
        from agent.staging import discard, stage

        staged: list[Staged] = []
        if new.service is not None:
            try:
                staged = stage(
                    self.cfg.services[new.service], target_for(self.cfg, new.service, new)
                )
            except ApplyError as exc:  # nothing has changed: no rollback to run
                log.error("apply.refused generation=%d error=%s", new.generation, exc)
                raise
        changes: list[FileChange] = []
        try:
            self._converge(new, old, changes, staged)
        except ApplyError as exc:
            problems = self._rollback(changes, old, new)
            msg = str(exc) + (f"; rollback problems: {'; '.join(problems)}" if problems else "")
            log.error("apply.failed generation=%d error=%s", new.generation, msg)
            raise ApplyError(msg) from None
        finally:
            discard(staged)  # those not switched in

    def _converge(
        self, new: Desired, old: Desired | None, changes: list[FileChange], staged: list[Staged]
    ) -> None:
        for name in self.cfg.services:
            if name != new.service:
                old_target = last_good_target(self.cfg, name, old)
                self._service(name, target_for(self.cfg, name, new), old_target, changes)
        if new.service is not None:
            s = new.service
            old_target = last_good_target(self.cfg, s, old)
            self._service(s, target_for(self.cfg, s, new), old_target, changes, staged)

    def _service(
        self,
        name: str,
        new: Target,
        old: Target,
        changes: list[FileChange],
        staged: Sequence[Staged] = (),
    ) -> None:
        svc = self.cfg.services[name]
        running_now = old.mode in RUNNING_MODES
        running_next = new.mode in RUNNING_MODES
        if not running_now and not running_next and new.doc is None:
            if svc.process is not None:
                self.procs.ensure(name, svc.process, new)  # make sure nothing is left running
            return
        files_changed = False
        if new.doc is not None:
            for item in staged:
                change = self.files.write(item.spec, item.content, item.path)
                if change is not None:
                    changes.append(change)
                    files_changed = True
        hooks = svc.commands
        env, fields = new.env(), new.fields
        version_changed = new.version != old.version or old.doc is None

        def hook(which: str) -> None:
            command = getattr(hooks, which)
            if command is not None:
                run_hook(
                    which, command, fields=fields, env=env, timeout=hooks.timeout, cwd=hooks.cwd
                )

        if running_next:
            if version_changed and new.version is not None:
                hook("install")
            if (version_changed or not running_now) and hooks.restart is not None:
                hook("restart")  # restart doubles as start
            elif running_now and files_changed:
                hook("reload")
        elif running_now:
            hook("stop")
        if svc.process is not None:
            self.procs.ensure(name, svc.process, new)

    def _rollback(self, changes: list[FileChange], old: Desired | None, new: Desired) -> list[str]:
        problems: list[str] = []
        for change in reversed(changes):
            try:
                self.files.undo(change)
            except OSError as exc:
                problems.append(f"{change.path}: {exc.strerror}")
        # Re-run the hooks and processes for the last-known-good state (files are already back).
        for name in self.cfg.services:
            try:
                good, bad = target_for(self.cfg, name, old), target_for(self.cfg, name, new)
                self._restore(name, good, bad)
            except ApplyError as exc:
                problems.append(str(exc))
        return problems

    def _restore(self, name: str, good: Target, bad: Target) -> None:
        svc = self.cfg.services[name]
        hooks = svc.commands
        env, fields = good.env(), good.fields

        def hook(which: str) -> None:
            command = getattr(hooks, which)
            if command is not None:
                run_hook(
                    which, command, fields=fields, env=env, timeout=hooks.timeout, cwd=hooks.cwd
                )

        if good.mode in RUNNING_MODES:
            if good.version != bad.version and good.version is not None:
                hook("install")
                if hooks.restart is not None:
                    hook("restart")
                else:
                    hook("reload")
            else:
                hook("reload")
        elif bad.mode in RUNNING_MODES:
            hook("stop")
        if svc.process is not None:
            self.procs.ensure(name, svc.process, good)

    def supervise(self, doc: Desired | None, now: float) -> None:
        """Between applies: restart crashed processes of the running service (with backoff)."""
        if doc is None or doc.service is None:
            return
        svc = self.cfg.services.get(doc.service)
        if svc is None or svc.process is None or doc.mode not in RUNNING_MODES:
            return
        self.procs.supervise(doc.service, svc.process, target_for(self.cfg, doc.service, doc), now)
