"""Durable runs, workers and schedules, on DBOS Transact.

* ``resume``: what a stopped run picks up from (the run log's completed steps, the saved
  Claude Code session); imports nothing heavy, a plain ``llmos run`` uses it.
* ``engine``: the DBOS configuration of a workspace (its system database: a SQLite file
  under ``.llmos/`` by default, the shared PostgreSQL when memory lives there) and launch.
* ``workflows``: a run as a DBOS workflow (``llmos.run``), a scheduled goal
  (``llmos.scheduled``).
* ``worker``: ``llmos worker``: claims goals from the queue, recovers the goals of
  workers that died.
* ``submit`` / ``schedules``: enqueue a goal, manage cron schedules (a DBOS client: no
  launch needed).

DBOS and SQLAlchemy are imported only by the commands that need them (worker, submit,
schedule, runs resume): a replay from the command line stays fast.
"""
