"""Audit trail: concurrent append, sequencer, offline verify and export, each beside a floor.

Four measures, each with a floor measured in the same run:

* **append**: ``--writers`` processes (fork) each open a Vault and append
  pre-built :class:`AuditEntry` objects with ``vault.audit.write`` inside
  ``vault.db.transaction()``, at each of ``--txn-sizes`` entries per
  transaction (entry rows with ``RETURNING id``, then their queue rows, into
  the vault's tables: five indexes besides the primary key, a foreign key from
  the queue, append-only triggers). Floor: the same processes insert the same
  canonical bytes with hand-written psycopg SQL (executemany below 10 entries
  per transaction, COPY from 10) into a plain table with the same columns, no
  trigger, no queue table, no index but the primary key. Reported: entries/s
  (wall, first start to last end), client CPU-ms and PostgreSQL backend CPU-ms
  per 1,000 entries (read from /proc), and the rate that CPU would allow.
* **sequence**: ``vault.audit.sequence`` over every entry the append runs left
  pending (10,000 per batch, one Ed25519 checkpoint per batch). Floor: the same
  work in hand-written SQL on plain tables (read a batch of pending entries,
  SHA-256 leaf hashes, extend the tree, COPY the log rows, sign, dequeue with
  one ``= ANY(array)``).
* **verify**: an export of ``--entries`` entries is built without the database
  (the file format only: canonical entries, leaf hashes, a signed checkpoint
  line every 4,096 entries, header and end lines from ``audit.export``, laid
  out as ``export_audit`` does) and ``audit.verify.verify_file`` (what
  ``cvault audit verify`` runs: two hashing workers) reads it in a fresh
  interpreter. Floor: reading the file's lines plus SHA-256 (leaf prefix) of
  each entry's bytes. Also shown: the read alone,
  SHA-256 alone over the entries in memory, and read + leaf hashes + the
  RFC 6962 root (every hash a full verify must compute, nothing else).
* **export**: the same entries are loaded into the audit tables (COPY, queue
  rows, ``vault.audit.sequence``, VACUUM ANALYZE; timed but not counted), then
  ``export_audit`` writes a full JSONL export in a fresh interpreter, which is
  then verified once. Floor: ``COPY (SELECT position, leaf_hash, canonical ...
  ORDER BY position) TO STDOUT`` streamed to a file with psycopg, also in a
  fresh interpreter.

Peak memory is VmHWM of each fresh interpreter. Its ``ru_maxrss`` (also in the
JSON lines) is not usable here: Linux carries the parent's high-water mark
across fork and exec, and ``RUSAGE_CHILDREN`` in this process would report the
largest of all its children, the forked writers included.

The machine is shared: each result carries how many cores other processes kept
busy meanwhile (``other_cores``, from /proc/stat), and CPU per entry, steadier
than rates, is reported beside every rate.

Each PostgreSQL phase runs in a fresh schema, dropped at the end even on failure.
Run: ``python -m bench.audit`` (1,000,000 entries, 10-15 minutes here) or
``python -m bench.audit --entries 20000`` (under a minute). ``--profile DIR``
adds one profiled, uncounted vault run per measure (cProfile, CPU time) and
profiles the backlog sequencer (then marked PROFILED).

Modules: ``entries`` (the generated entries), ``target`` (schemas, connections),
``probes`` (time, CPU, load, memory), ``children`` (fresh interpreters),
``append`` (with the ``sequencer``), ``verify`` (the export file), ``export``
(from PostgreSQL), ``report`` (summaries, the table) and ``cli`` (options, phases).
"""
