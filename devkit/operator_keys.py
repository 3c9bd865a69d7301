"""An operator signing key for development clusters (the demo, test fleets).

`operator_signer` writes an operator key next to the master key, lists its public half in
control/keys.json (with the master key, as `bosun keys add-operator` does) and returns the
signer `controller.spec.revisions.apply` takes, so a demo or a test applies signed
revisions as an operator would (docs/security.md#operator-signed-specs).
"""

from __future__ import annotations

from pathlib import Path

from controller.shell.key_epochs import set_operator
from controller.spec.signature import Signer
from wire.pubkeys import generate_seed, public_of, read_operator_key, write_operator_key
from wire.store import Store


def operator_signer(
    store: Store, master: bytes, key_dir: Path | None, name: str = "devkit"
) -> Signer:
    """A listed operator key for `store`'s cluster: in `key_dir` (created on first use, for
    `bosun ... --operator-key`), or only in memory when `key_dir` is None."""
    if key_dir is None:
        seed = generate_seed()
    else:
        path = operator_key_path(key_dir, name)
        if not path.exists():
            write_operator_key(path)
        seed = read_operator_key(path)
    doc = set_operator(store, master, name, public_of(seed))
    return Signer(name, seed, doc.cluster)


def operator_key_path(key_dir: Path, name: str = "devkit") -> Path:
    return key_dir / f"operator-{name}.key"
