"""Big defect analyses run as jobs (queue ``msd``): the job computes the analysis into the
cache; the same request answers 200 from there once the job finished."""

from __future__ import annotations

from typing import Any

from mesdash.core.db.warehouse import get_warehouse
from mesdash.core.jobs import JobContext, JobKind, Submitted, submit
from mesdash.msd import service
from mesdash.msd.schemas import AnalysisParams
from mesdash.settings import get_settings

MSD_JOB = JobKind(name="msd", queue="msd", func="mesdash.msd.jobs:run_msd_job")


def is_big(params: AnalysisParams) -> bool:
    settings = get_settings()
    return params.days > settings.msd_sync_max_days or len(params.container_ids) > settings.msd_sync_max_lots


def start(params: AnalysisParams) -> Submitted:
    return submit(MSD_JOB, params.hash_params())


def run_msd_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    parsed = AnalysisParams.model_validate(params)

    def stage(name: str, done: int, total: int) -> None:
        ctx.progress(total=total, completed=done, stage=name)

    summary = service.analyze(get_warehouse(), parsed, stage)["summary"]
    return {"query_id": summary["query_id"], "kpi": summary["kpi"], "quality": summary["quality"]}
