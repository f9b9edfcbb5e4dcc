"""The storage stage: one SQLite file per job.

    schema.py   the tables, their versions and migrations, the pragmas of every connection
    jobfile.py  the job file open for crawling: lock, connection, transactions, the SQLite error boundary
    pages.py    pages, history and links, written by the scheduler's one writer task
    read.py     named read queries for stats, export and the summary (read-only connections)
    extracted.py       what extraction made of each page: stored with it, replaced when rules run again
    extracted_read.py  its queries: stored HTML bodies, the data fields of exports, coverage
    merge.py    several jobs merged, one winning fetch a URL (the latest): the rule exports and the report share
    report_scratch.py  ``crawler report``'s merge of one job or several into a scratch file,
    report_queries.py  its named queries over that file, report_rows.py the rows they return

The SQLite frontier (``crawler.frontier.sqlite``) keeps its queue in the same file, in ``urls``.
"""
