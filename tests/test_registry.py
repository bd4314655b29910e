"""Registry: immutable, atomically written records; concurrent writers lose nothing."""

import json
import multiprocessing as mp
import os

import pytest

from nasrepro.jobs import FIDELITY_VERSION, trial_key
from nasrepro.registry import SCHEMA, RegistryError, load_records, write_record


def _record(seed: int, writer: int = 0) -> dict:
    config = {"space": "nb201", "dataset": "cifar10", "writer": writer}
    return {
        "schema": SCHEMA,
        "suite": "demo",
        "experiment": "e1",
        "budget": "smoke",
        "seed": seed,
        "config": config,
        "config_hash": trial_key(config, seed),
        "fidelity_version": FIDELITY_VERSION,
        "metrics": {"cifar10": {"test_acc": 50.0}},
        "genotype": "g",
        "provenance": {"created_at": f"2026-01-01T00:00:{seed:02d}+00:00"},
        "writer": writer,
        "payload": "x" * 20000,  # large enough that a torn write would show
    }


def _writer(root: str, writer: int, count: int, barrier) -> None:
    barrier.wait()
    for i in range(count):
        write_record(root, _record(i % 60, writer))


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    n_proc, per_proc = 4, 40
    barrier = ctx.Barrier(n_proc)
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), w, per_proc, barrier))
        for w in range(n_proc)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = load_records(tmp_path)
    assert len(records) == n_proc * per_proc
    assert len({r["_path"] for r in records}) == n_proc * per_proc
    per_writer = {w: sum(r["writer"] == w for r in records) for w in range(n_proc)}
    assert per_writer == {w: per_proc for w in range(n_proc)}
    leftovers = [f for f in tmp_path.rglob("*") if f.name.startswith(".tmp-")]
    assert leftovers == []


def test_rerun_adds_a_record_and_never_rewrites(tmp_path):
    first = write_record(tmp_path, _record(0))
    before = first.read_bytes()
    second = write_record(tmp_path, _record(0))
    assert first != second and first.read_bytes() == before
    assert len(load_records(tmp_path, "demo")) == 2


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "link", boom)
    with pytest.raises(OSError, match="disk full"):
        write_record(tmp_path, _record(0))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert load_records(tmp_path) == []


def test_incomplete_or_foreign_records_are_refused(tmp_path):
    rec = _record(0)
    del rec["metrics"]
    with pytest.raises(RegistryError, match="lacks fields"):
        write_record(tmp_path, rec)
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "x.json").write_text(json.dumps({"schema": "other/1"}))
    with pytest.raises(RegistryError, match="schema"):
        load_records(tmp_path)


def test_non_finite_metrics_are_refused(tmp_path):
    rec = _record(0)
    rec["metrics"]["cifar10"]["test_acc"] = float("nan")
    with pytest.raises(RegistryError, match="metrics.cifar10.test_acc: expected a finite number"):
        write_record(tmp_path, rec)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
