"""Segments: representative rules compiled by ``vault.segments``, each beside a
hand-written SQL query for the same rule, in the same run.

PostgreSQL: a dedicated database (``--database``, default ``bench_segments``, dropped at
the end even on failure) gets the vault's schema, ``--customers`` customers (default
1,000,000; tiers, 50 % consented to marketing e-mail) and about ten interactions each
(default ~10,000,000, over 400 days: page views, e-mail opens and clicks, cart
additions and abandons, purchases in EUR and a few in USD, refunds, app opens, store
visits), plus browsing sessions in the last 60 days for 5 % of the customers (a page
view, a cart addition within 2 hours, then a purchase within 2 hours or an abandoned
cart within an hour, 40 % of those bought within 4 days), generated inside the server
with ``INSERT ... SELECT generate_series`` and indexed after the load, then ``VACUUM
ANALYZE``. The metrics rollup is built once (timed: ``MetricsRollup.refresh_all``).

SQLite: the same generator in Python at ``--sqlite-customers`` (default 20,000).

Each query is counted (``SELECT count(*) FROM (<query>)``) so that both sides do
the same work and no id crosses the wire: one untimed warm-up, then ``--runs``
timed runs (best and median reported). Sessions run with ``jit = off`` and
``max_parallel_workers_per_gather = 0`` (PERFORMANCE.md: both slow these short
queries on 2 cores). Also timed: one full ``SegmentService``-style refresh of
rule 1 (evaluate, fetch ids, diff, insert memberships and outbox rows).

The rules (:mod:`bench.segments.rules`; time windows end at a fixed ``now``):

1. at least 2 purchases in 90 days, no page view in 30 days, consent to e-mail;
2. an abandoned cart in the last day and no purchase in the last day;
3. gold tier and more than 500.00 EUR spent on purchases in 365 days;
4. top quintile by money spent in 365 days (``rfm_m = 5`` from the rollup);
   hand-written twice: on the raw interactions, and on the rollup;
5. win-back: no interaction in 60 days but a purchase ever; compiled twice (from
   behaviour conditions, from rollup metrics), hand-written twice likewise;
6. a sequence: an abandoned cart in the last 30 days with no purchase within 2 days
   after it;
7. a sequence: a page view in the last 30 days, then a cart addition, then a
   purchase, each within an hour of the step before;
   6 and 7 are hand-written twice (as one would at first; with the later steps also
   bounded by the window's start, as the compiler does) and also timed in the ingest
   hook's batch shape (``among=``: the 1,000 customers with the latest interactions).

``--keep`` leaves the database for a later ``--reuse`` run (which skips the load);
``--only 6,7`` times some rules only.

Run: ``python -m bench.segments`` (PostgreSQL at ``CVAULT_BENCH_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""
