"""The Ray stage runner on a real local Ray: resume, failures, retries, timeouts, accounting."""
import json

import pytest

from pipeline.errors import AvdfError
from pipeline.runner import provenance_path, run_stage

WORKER = "stage_workers:SquareWorker"


def _items(n):
    return [{"key": f"t/c{i}", "value": i} for i in range(n)]


def test_runs_every_item_and_loads_the_worker_once_per_process(ray_session, tmp_path):
    res = run_stage("square", _items(8), WORKER, {}, tmp_path, progress=False)
    assert [r["square"] for r in res.rows] == [i * i for i in range(8)]
    assert res.computed == 8 and res.skipped == 0 and not res.failures
    per_pid = {r["pid"]: r["loads"] for r in res.rows}
    assert all(v == 1 for v in per_pid.values())  # constructor ran once in each worker process


def test_each_item_records_the_ray_node_that_computed_it(ray_session, tmp_path):
    res = run_stage("square", _items(3), WORKER, {}, tmp_path, progress=False)
    nodes = {n["NodeID"] for n in ray_session.nodes() if n["Alive"]}
    records = [json.loads(provenance_path(tmp_path, r["key"]).read_text()) for r in res.rows]
    assert {r["ray_node_id"] for r in records} == nodes  # the one local node
    assert [r["pid"] for r in records] == [r["pid"] for r in res.rows]  # the worker that ran it
    # Node ids change with every Ray session, so the rows (which feed manifests) never carry them,
    # and a rerun in another session still finds every item up to date.
    assert not any("ray_node_id" in r for r in res.rows)
    assert run_stage("square", _items(3), WORKER, {}, tmp_path, progress=False).skipped == 3


def test_rerun_skips_done_items_and_recomputes_missing(ray_session, tmp_path):
    run_stage("square", _items(5), WORKER, {}, tmp_path, progress=False)
    (tmp_path / "done" / "t__c3.json").unlink()  # as if the run was killed before c3 finished
    res = run_stage("square", _items(5), WORKER, {}, tmp_path, progress=False)
    assert res.skipped == 4 and res.computed == 1
    assert [r["key"] for r in res.rows] == [f"t/c{i}" for i in range(5)]
    # A changed config recomputes everything.
    res = run_stage("square", _items(5), WORKER, {"fail_keys": []}, tmp_path, progress=False)
    assert res.computed == 5


def test_failures_are_recorded_and_the_batch_goes_on(ray_session, tmp_path):
    res = run_stage("square", _items(6), WORKER, {"fail_keys": ["t/c2", "t/c4"]}, tmp_path, progress=False)
    assert len(res.rows) == 4 and {f.key for f in res.failures} == {"t/c2", "t/c4"}
    assert all(f.error_type == "no_audio" and "no audio stream" in f.message for f in res.failures)
    assert "6 inputs -> 4 done" in res.summary() and "2 failed" in res.summary()
    # Rerun retries only the failures.
    res2 = run_stage("square", _items(6), WORKER, {"fail_keys": ["t/c2", "t/c4"]}, tmp_path, progress=False)
    assert res2.skipped == 4 and len(res2.failures) == 2


def test_a_dead_worker_process_is_retried(ray_session, tmp_path):
    res = run_stage("square", _items(3), WORKER, {"die_once_keys": ["t/c1"]}, tmp_path, progress=False)
    assert not res.failures and len(res.rows) == 3
    assert (tmp_path / "t__c1.died").exists()


def test_timeout_becomes_a_failure_row(ray_session, tmp_path):
    res = run_stage(
        "square", _items(3), WORKER, {"sleep_keys": ["t/c0"]}, tmp_path, timeout_s=10, progress=False
    )
    assert [f.error_type for f in res.failures] == ["timeout"]
    assert len(res.rows) == 2


def test_duplicate_keys_refused(tmp_path):
    with pytest.raises(AvdfError, match="duplicate"):
        run_stage("square", _items(2) + _items(1), WORKER, {}, tmp_path, progress=False)
