"""The distributed runner: any number of worker processes, on any number of hosts, on Procrastinate.

PostgreSQL is the ledger and the queue. ``orderbridge scheduler`` queues each connection's due
jobs; ``orderbridge worker`` runs them with the engine's ``run_job``; engine writes that create
work queue the next run in their own transaction (``Hub.wake``). Correctness still comes from
the ledger: a Procrastinate lock and queueing lock per (connection, job) keep at most one run
queued and one running, and the job_state lease stays in force underneath.
"""

from orderbridge.runners.distributed.queue import QUEUE, TASK_NAME, job_lock, make_app, require_postgres
from orderbridge.runners.distributed.setup import attach

__all__ = ["QUEUE", "TASK_NAME", "attach", "job_lock", "make_app", "require_postgres"]
