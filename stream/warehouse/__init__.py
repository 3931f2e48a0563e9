"""Warehouse export: segment changes and profile snapshots as Hive-partitioned Parquet files, queried with DuckDB.

``segstream export --to DIR`` writes::

    DIR/changes/date=YYYY-MM-DD/part-p{partition}-{first_offset}-{last_offset}.parquet
    DIR/profiles/snapshot_at=YYYY-MM-DDTHH:MM:SSZ/part-{n}.parquet

:mod:`layout` names files (pure), :mod:`batch` decides when to flush (pure),
:mod:`parquet` writes files atomically, :mod:`sink` consumes the changes topic,
:mod:`snapshot` scans profiles in Redis, :mod:`sql` holds the views and the
"members of a segment at a time" query.
"""
