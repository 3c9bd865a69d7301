"""Store URLs and the directory backend's own guarantees."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from wire.errors import StoreConfigError, WriteConflict
from wire.store import DirectoryStore, open_store, parse_store_url
from wire.store.s3 import S3Store


def test_file_url_opens_a_directory_store(tmp_path: Path) -> None:
    """file:///abs/path is the embedded backend, created when missing."""
    store = open_store(f"file://{tmp_path}/bucket")
    assert isinstance(store, DirectoryStore) and (tmp_path / "bucket").is_dir()


def test_s3_url_with_prefix_endpoint_and_region() -> None:
    """s3://bucket/prefix?endpoint=...&region=... configures the S3 backend (path style)."""
    store = open_store("s3://fleet/prod/eu?endpoint=http://127.0.0.1:8333&region=eu-west-1")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.endpoint) == (
        "fleet",
        "prod/eu/",
        "http://127.0.0.1:8333",
    )
    assert store.describe("desired/a.json") == "s3://fleet/prod/eu/desired/a.json"
    assert store.region == "eu-west-1" and store.path_style


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty store URL"),
        ("bucket", "unknown scheme"),
        ("http://x", "unknown scheme 'http'"),
        ("file://relative/path", "absolute path"),
        ("file:///x?y=1", "take no options"),
        ("s3://", "missing or invalid bucket"),
        ("s3://bad bucket", "missing or invalid bucket"),
        ("s3://b?endpoint=ftp://x", "endpoint must be an http"),
        ("s3://b?colour=red", "unknown option 'colour'"),
        ("s3://b?region=", "needs one value"),
        ("s3://b?path_style=maybe", "path_style must be true or false"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    """Each malformed URL names what is wrong and what is expected."""
    with pytest.raises(StoreConfigError, match=message):
        parse_store_url(url)


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../b",
        "/abs",
        "",
        "a//b",
        "a/./b",
        ".bosun-store/lock-00",
        "x\x00y",
        "a\\b",
    ],
)
def test_directory_store_refuses_keys_that_escape_the_root(tmp_path: Path, key: str) -> None:
    """Traversal, absolute, empty and internal keys are refused before touching the disk."""
    store = DirectoryStore(tmp_path / "b")
    with pytest.raises(StoreConfigError, match="refusing key"):
        store.put(key, b"x")
    with pytest.raises(StoreConfigError):
        store.get(key)
    assert not (tmp_path / "escape").exists()


def test_directory_store_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    """A link inside the bucket pointing outside it cannot be followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    store = DirectoryStore(tmp_path / "b")
    (tmp_path / "b" / "desired").symlink_to(outside)
    with pytest.raises(StoreConfigError, match="through a link"):
        store.put("desired/x.json", b"x")
    assert not (outside / "x.json").exists()


def test_directory_store_leaves_no_temp_files_and_lists_no_internals(tmp_path: Path) -> None:
    """Writes are rename-based; lock files and temp files never show up in a listing."""
    store = DirectoryStore(tmp_path / "b")
    for i in range(5):
        store.put("k", str(i).encode())
    assert [o.key for o in store.list()] == ["k"]
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.startswith(".tmp-")]


def _create_only(root: str, i: int) -> bool:
    try:
        DirectoryStore(root).put("control/lease.json", f"p{i}".encode(), if_none_match="*")
        return True
    except WriteConflict:
        return False


def test_directory_store_conditional_writes_are_atomic_across_processes(tmp_path: Path) -> None:
    """Eight processes racing a create-only put: exactly one wins (flock, not just a thread lock)."""
    root = str(tmp_path / "b")
    DirectoryStore(root)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_only, [(root, i) for i in range(8)])
    assert results.count(True) == 1
