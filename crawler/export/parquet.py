"""Parquet: the selected fields as typed columns (integers, booleans, UTC timestamps, text; null
where the job has no value; the extraction's ``data.NAME`` typed by the values the jobs hold:
int64, double, bool, string, list<string>, else JSON text, dates as the ISO 8601 text the rules
give; ``jsonld``, ``opengraph``, ``microdata`` as JSON text), written in row groups of ``ROW_GROUP`` records so that memory holds
one group, whatever the job's size. Needs pyarrow: ``pip install 'crawler[parquet]'``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, BinaryIO

from crawler.errors import UsageError
from crawler.export.base import Selection
from crawler.storage.read import JobReader

ROW_GROUP = 10_000
INSTALL = "pip install 'crawler[parquet]'"


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"--format parquet needs pyarrow: {INSTALL}") from None
    arrow_types = {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
                   "time": pa.timestamp("s", tz="UTC"), "list": pa.list_(pa.string()), "json": pa.string()}
    schema = pa.schema([pa.field(f, arrow_types[selection.field_type(f)]) for f in selection.fields])
    times = [f for f in selection.fields if selection.field_type(f) == "time"]
    as_json = [f for f in selection.fields if selection.field_type(f) == "json"]
    columns: dict[str, list[Any]] = {f: [] for f in selection.fields}
    n = 0
    # The writer closes what it opened; a NativeFile over ``out`` leaves ``out`` to its owner.
    with pq.ParquetWriter(pa.PythonFile(out, mode="w"), schema, compression="zstd") as writer:
        for record in selection.records(jobs):
            for field in times:
                if record[field] is not None:
                    record[field] = datetime.fromisoformat(record[field].replace("Z", "+00:00"))
            for field in as_json:
                if record[field] is not None:
                    record[field] = json.dumps(record[field], ensure_ascii=False)
            for field, value in record.items():
                columns[field].append(value)
            n += 1
            if n % ROW_GROUP == 0:
                writer.write_table(pa.table(columns, schema=schema))
                columns = {f: [] for f in selection.fields}
        if n % ROW_GROUP or n == 0:
            writer.write_table(pa.table(columns, schema=schema))
    return n
