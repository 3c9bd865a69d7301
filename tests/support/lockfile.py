"""Compare the running environment with requirements/lock.txt (PEP 503 names, markers honoured)."""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[2] / "requirements" / "lock.txt"
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]+))?"
)
# the project itself is installed editable beside the lock, never from it
_OURS = {"bosun"}


def locked(lock: Path = LOCK) -> dict[str, str]:
    """The lock's pins whose environment markers hold here: {normalized name: version}."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        marker = match["marker"]
        if marker and not Marker(marker.strip()).evaluate():
            continue
        pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def installed() -> dict[str, str]:
    """Every distribution installed in this venv, but the project: {normalized name: version}.

    Only site-packages is read, as `pip freeze` reads it: once pkg_resources is imported,
    setuptools puts its vendored copies (jaraco, packaging, ...) on sys.path as well.
    """
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=paths):
        name = canonicalize_name(dist.metadata["Name"])
        if name not in _OURS:
            found[name] = dist.version
    return found


@dataclass(frozen=True)
class Drift:
    missing: dict[str, str]  # locked, not installed
    extra: dict[str, str]  # installed, not locked
    other: dict[str, tuple[str, str]]  # name: (locked, installed)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.other)

    def lines(self) -> list[str]:
        out = [f"missing {n}=={v}" for n, v in sorted(self.missing.items())]
        out += [f"not in the lock {n}=={v}" for n, v in sorted(self.extra.items())]
        out += [f"{n}: lock {a}, installed {b}" for n, (a, b) in sorted(self.other.items())]
        return out


def drift(lock: Path = LOCK) -> Drift:
    want, have = locked(lock), installed()
    return Drift(
        missing={n: v for n, v in want.items() if n not in have},
        extra={n: v for n, v in have.items() if n not in want},
        other={n: (want[n], have[n]) for n in want.keys() & have.keys() if want[n] != have[n]},
    )


if __name__ == "__main__":  # scripts/test --latest: what the newest versions change
    found = drift()
    print("\n".join(found.lines()) or "the newest versions are the locked ones")
