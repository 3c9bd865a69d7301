"""The controller's side of secret config values (docs/security.md#secrets).

    spec/current.json   {"$secret": "sealed1:..."}   opened here with the master key
    the planner         {"$secret": "ref:<hex>"}     a keyed digest; the value stays here
    desired/<m>.json    {"$secret": "m1:..."}        encrypted for m at publish time

The planner never holds a value, so plans, memory, events and `--dry-run` cannot print one,
and an unchanged value keeps the machines' configs unchanged across spec revisions. Values
live only in this process's memory (`_values`), keyed by their reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from controller.spec.model import ClusterSpec
from controller.spec.secrets import SPEC_SECRET_AAD, sealed_secrets, with_configs
from wire.documents import Desired
from wire.errors import BosunError
from wire.secret_box import MARK, encrypt_for_machine, has_secrets, map_secrets, reference
from wire.signing import derive_control_key


class SecretUnreadable(BosunError):
    """A sealed value in the spec that this controller's master key does not open."""


@dataclass
class SpecSecrets:
    master: bytes = field(repr=False)
    _values: dict[str, bytes] = field(default_factory=dict, repr=False)
    _prepared: tuple[ClusterSpec, ClusterSpec] | None = field(default=None, repr=False)

    def prepare(self, spec: ClusterSpec | None) -> ClusterSpec | None:
        """`spec` with each sealed value replaced by its reference (memoised per spec)."""
        if spec is None or not sealed_secrets(spec):
            return spec
        if self._prepared is not None and self._prepared[0] is spec:
            return self._prepared[1]
        from wire.pubkeys import open_sealed

        control = derive_control_key(self.master)
        values: dict[str, bytes] = {}

        def one(path: str, token: str) -> dict[str, str]:
            try:
                value = open_sealed(self.master, token, SPEC_SECRET_AAD)
            except BosunError as exc:
                raise SecretUnreadable(
                    f"spec revision {spec.revision}: the secret at {path}: {exc}"
                ) from None
            ref = reference(control, value)
            values[ref] = value
            return {MARK: ref}

        out = with_configs(spec, lambda base, config: map_secrets(config, one, base))
        self._values, self._prepared = values, (spec, out)  # only the spec planned with
        return out

    def for_machine(self, doc: Desired, key: bytes, object_key: str) -> Desired:
        """`doc` with each reference encrypted for its machine (key: the one it verifies
        with), bound to machine, object key, generation and path."""
        if not has_secrets(doc.config):
            return doc

        def one(path: str, token: str) -> dict[str, str]:
            value = self._values.get(token)
            if value is None:  # a bug or a planner fed another spec: never write a reference
                raise SecretUnreadable(f"{object_key}: no value held for the secret at {path}")
            return {
                MARK: encrypt_for_machine(key, doc.machine, object_key, doc.generation, path, value)
            }

        return replace(doc, config=map_secrets(doc.config, one))
