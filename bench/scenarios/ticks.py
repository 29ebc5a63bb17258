"""The scheduler tick: every periodic job (Huey `db_periodic_task`) run once over the whole dataset.

The job list is discovered, not hard-coded: Huey's registry holds every
periodic task of every installed app's tasks.py, so the goal-health lights job
and later rules appear here as soon as they exist. Extra callables can also be
registered in TICKS (name → function) for jobs that are not Huey tasks.
"""

from __future__ import annotations

from . import Skip, scenario

TICKS: dict = {}


def periodic_jobs() -> dict:
    from django.utils.module_loading import autodiscover_modules
    from huey.contrib.djhuey import HUEY

    autodiscover_modules("tasks")
    jobs = {f"{t.__module__}.{t.__name__}": t for t in HUEY._registry._periodic_tasks}
    return {**jobs, **TICKS}


@scenario("scheduler.tick", title="Scheduler tick: every periodic job once", heavy=True, target_ms=2000,
          group="jobs")
def tick(ctx, role):
    jobs = periodic_jobs()
    if not jobs:
        raise Skip("no periodic jobs are registered yet (the health-light job will appear here when it exists)")

    def run():
        from django.db import transaction

        # Rolled back afterwards: every run sees the same dataset (jobs are idempotent anyway).
        with transaction.atomic():
            for job in jobs.values():
                if isinstance(job, type):
                    job().execute()  # a Huey task class: run its function in this process
                else:
                    job()
            transaction.set_rollback(True)
        return len(jobs)

    run.names = sorted(jobs)
    return run
