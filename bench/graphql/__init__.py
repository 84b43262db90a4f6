"""GraphQL throughput race: our gateway against PostGraphile v4 on the same data.

One run does everything below and cleans up after itself, even on failure:

1. **Data**, in two fresh PostgreSQL schemas (not timed in the race):
   * the vault's tables, written by our services (``vault.customers.create`` in
     units of 500, ``vault.interactions.record_many`` in batches of 1,000, as the
     ``system`` role, on ``--load-workers`` forked processes): N customers with all
     six PII fields, about 10 interactions each, every value encrypted;
   * the same values in clear, plain tables for PostGraphile: ``pg_customers``
     and ``pg_interactions`` (index on ``(customer_id, occurred_at DESC)``).
2. **Servers**: ours is ``uvicorn api.app:create_app_from_env --factory`` (production
   mode, uvloop and httptools when installed, a data dir made by
   ``vault.bootstrap.initialise`` whose keyring loaded the data), with 1 and then
   2 processes (``--workers 2``: one shared socket; how the 16 connections split
   between the workers is recorded from ``ss`` and per-process CPU time). The
   peer is PostGraphile 4 (``bench/postgraphile``, installed with npm on first run)
   on the plain schema, one process and ``--cluster-workers 2``. Both run at the
   same time; timed runs alternate between them so drift hits both.
3. **Query**: the profile query, a customer's six PII fields and its 10 latest
   interactions, for a random customer from a pre-chosen list (the same ids and
   the same sequence of ids for every server: wrk's Lua with fixed seeds). Ours
   with a ``support_agent`` token and ``X-Purpose: support`` (policy: masked,
   clear and hidden fields; decryption; one ``pii.access`` audit entry per request,
   group-committed by the app's audit writer under uvicorn's lifespan), and
   once more with ``data_subject`` tokens (``X-Purpose: self``, every field in
   clear, a token per customer) since no other role reads every field in clear.
4. **Load**: wrk, 2 threads, 16 keep-alive connections, a warm-up, then 3 timed
   runs (20 s each). Reported: req/s, p50 and p99 (wrk ``--latency``), CPU-ms per
   request of the server's processes and of PostgreSQL (``/proc/<pid>/stat``
   before and after each run). Also recorded: PostgreSQL sessions opened during
   each run (a pool smaller than the concurrency opens and closes connections),
   and one run per server at one connection (the latency of a request with no
   queue in front of it: with 16 connections, p50 is about 16 / throughput by
   Little's law).

Results are printed as JSON lines as they come, then as a markdown table with
the ratio ours / PostGraphile at the same process count and the targets of
issue 15 (>= 0.4x PostGraphile's req/s, <= 1.5 server and <= 0.5 PostgreSQL CPU-ms per
request, p99 <= 3x p50; p50 <= 1.5 ms at one connection; <= 200 MB per process).
PostgreSQL's CPU is given twice: its own backends' (those connected to the server under
test, sampled at the start, a third in and the end of each run: a lower bound, since the
WAL writer and exited backends are left out) and, in brackets, all of PostgreSQL's (an
upper bound on a box where other work uses the same PostgreSQL). ``--profile`` also records
our one-process server with py-spy under the same load (flame graph and
collapsed stacks in ``bench/out/``) and prints where its CPU goes, by the
innermost function of ours on each sampled stack, in CPU-ms per request.

Run: ``python -m bench.graphql [--profile]`` (100,000 customers / 1,000,000
interactions, about 15 minutes here) or ``python -m bench.graphql --quick``
(2,000 customers, 4 s runs, about two minutes). Needs ``wrk`` and ``node``/``npm``
on the PATH; ``--profile`` needs py-spy (``pip install py-spy``).

Modules: ``plan`` (options and sizes), ``target`` (the two schemas, the data dir),
``dataset`` (the generated values), ``load`` (both copies of the data), ``cpu``
(CPU accounting from /proc), ``client`` (the queries), ``servers`` (ours and
PostGraphile), ``wrk`` (load and measurement), ``profiling`` (py-spy), ``race``
(one process count, then the next), ``report`` (the tables) and ``cli`` (main).
"""
