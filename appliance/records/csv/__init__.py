"""CSV in and out of a collection: streamed export with the listing's filters, all-or-nothing import.

- :mod:`.reading` decodes and parses a file (UTF-8 with or without a BOM,
  ``;`` or ``,``, quoted cells with line breaks; line numbers are the file's own);
- :mod:`.cells` guards the cells a spreadsheet would run as a formula;
- :mod:`.checks` maps columns to fields and checks every row before anything is written;
- :mod:`.importing` writes the checked rows in short batches and undoes them on failure;
- :mod:`.export` streams the records the listing's filters select;
- :mod:`.job_files`, :mod:`.recovery` and :mod:`.jobs` run an import in the background with its
  progress and its undo journal in a job file, and undo the imports a dead process left half-written.

CSV import jobs are not jobs of :mod:`appliance.jobs`, on purpose. That system runs named, scheduled
maintenance jobs (one row per job in the database, one run at a time per job, under a per-job lock)
in the server's parent process, which polls for due and requested runs. An import is none of that:
it is one person's upload, many may run at once, and it runs at once in a thread of the web worker
that received the file, so the page can show its progress seconds later. Its state must also be
readable by every worker process without a database write per batch (a write would compete with the
import's own batches for SQLite's one write lock), and its undo journal (the id range it reserved)
must be on disk, fsync'ed, before its first row is written, so that an import in a worker killed
mid-way is undone by the next worker that reads the job or by the server at start
(tests/webapp/test_csv_interrupted.py). Moving imports onto the scheduler would delay every import
by a poll, serialise them, move them out of the worker that holds the upload, and lose that
recovery; so they keep their job files under ``<home>/run/imports``.
"""
