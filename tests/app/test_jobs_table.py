"""The jobs table made before the retrain kind is migrated in place, rows kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modescope.app.jobs import SCHEMA, JobStore

OLD = SCHEMA.replace("'train', 'pipeline', 'retrain'", "'train', 'pipeline'")


def test_an_old_jobs_table_takes_retrain_jobs_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    assert OLD != SCHEMA
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD)
        conn.execute("INSERT INTO jobs (kind, run, params, argv, status, created_at, log) "
                     "VALUES ('train', 'old', '{}', '[]', 'finished', 'then', 'x.log')")
        try:
            conn.execute("INSERT INTO jobs (kind, run, params, argv, status, created_at, log) "
                         "VALUES ('retrain', 'r', '{}', '[]', 'queued', 'now', 'y.log')")
        except sqlite3.IntegrityError:
            pass
        else:
            raise AssertionError("the old table should refuse the new kind")
    store = JobStore(path)
    try:
        job = store.add("retrain", "new", {"parent": "old"}, ["python"], "z.log")
        assert job.kind == "retrain" and job.params == {"parent": "old"}
        assert [(j.kind, j.run, j.status) for j in store.list()] == [
            ("retrain", "new", "queued"), ("train", "old", "finished")]
    finally:
        store.close()
    JobStore(path).close()  # opening a migrated table again changes nothing
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert "jobs_before_retrain" not in names and "jobs_status" in names
