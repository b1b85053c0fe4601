"""Undo: schema snapshots, data kept from lossy migration steps, and a verified rollback (issue 10).

- `losses` (pure): which statements of a migration lose data, read from PostgreSQL's parse tree.
- `store`: the `pgshift.snapshots`, `pgshift.snapshot_chunks` and `pgshift.kept_data` tables; taking a snapshot
  (fingerprint + pg_dump DDL, stored as content-addressed chunks), each record signed (`tools.integrity`).
- `retention`: how long kept data and snapshots stay, and the summary of what is kept.
- `keep`: copying what a lossy statement would destroy into `pgshift.kept_*` tables, and putting it back.
- `capture`: what the migration runner does around one migration (snapshot first, keep before each lossy step).
- `shadow`: loading a snapshot's DDL into a throw-away embedded PostgreSQL and reading its schema.
- `snapshots`: the snapshot_schema / list_snapshots / verify_snapshot engine functions.
- `rollback`: plan live -> snapshot with the planner, restore kept data, verify the fingerprint, record histories.
"""
