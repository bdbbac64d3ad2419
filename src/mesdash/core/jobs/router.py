"""``/api/jobs/{id}``: status, result and cancel for every kind of job."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mesdash.core.jobs.runner import cancel, job_result, job_status
from mesdash.core.resilience.problem import json_response, problem_responses

router = APIRouter(tags=["jobs"])


@router.get(
    "/api/jobs/{job_id}",
    summary="A job's status: queued|started|finished|failed|cancelled, progress, error",
    response_class=Response,
    responses=problem_responses("NOT_FOUND"),
)
def get_job(job_id: str) -> Response:
    return json_response(job_status(job_id))


@router.get(
    "/api/jobs/{job_id}/result",
    summary="A finished job's result (409 while it is not finished)",
    response_class=Response,
    responses=problem_responses("NOT_FOUND", "JOB_NOT_FINISHED"),
)
def get_job_result(job_id: str) -> Response:
    return json_response({"job_id": job_id, "result": job_result(job_id)})


@router.delete(
    "/api/jobs/{job_id}",
    summary="Cancel a queued or running job; returns its status",
    response_class=Response,
    responses=problem_responses("NOT_FOUND"),
)
def delete_job(job_id: str) -> Response:
    return json_response(cancel(job_id))
