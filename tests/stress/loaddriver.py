"""A loopback load driver: N virtual users (httpx + asyncio) replaying a realistic mix.

Each user has its own connection pool and bearer token (rate limits key on the token, as
they would for 50 people) and loops over weighted scenarios until the deadline or the
request budget is spent:

- ``trace``: seed-resolve lot names → lineage → events of a few lots (inline 200);
- ``trace_job``: events of 30–60 lots with lineage (202 → RQ job → status polls → NDJSON
  stream, checked for one ``meta``, unique batch indexes and a final ``complete``);
- ``reject`` / ``hold`` / ``resource`` / ``job_query``: the primary query (200, or 202 and
  a job on the ``reports`` queue for long ranges) then the views a page shows, and now and
  then the CSV export, read to the end;
- ``query_tool``: equipment search, equipment period, lot → equipment (sometimes CSV),
  split/merge history, adjacent lots, recent jobs of a machine;
- ``health``: ``/health`` and the warehouse summary.

Every request is recorded (route template, status, seconds, ``Retry-After``, problem
``code``, or the client exception); every job's terminal state too. ``Report.violations``
applies the pass rules: no 5xx except the designed 503/504 codes, every 429/503 carries
``Retry-After``, no request past its timeout, no job left unfinished, no stream with a lost
or duplicated batch.

Run it by hand against any server::

    .venv/bin/python tests/stress/loaddriver.py --base http://127.0.0.1:8000 \\
        --database-url duckdb:///var/mes.duckdb --users 50 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import orjson

from mesdash.core.resilience.errors import ERROR_TABLE

TERMINAL = {"finished", "failed", "cancelled"}
# the designed degraded answers are the error table's 503 and 504 codes; /health's 503 is its
# own report (status "unhealthy"), not a problem, and is designed as such
DESIGNED_503 = {code for code, spec in ERROR_TABLE.items() if spec.status == 503} | {"HEALTH_UNHEALTHY"}
DESIGNED_504 = {code for code, spec in ERROR_TABLE.items() if spec.status == 504}
DOMAINS = ["history", "materials", "rejects", "holds", "jobs"]


# ----------------------------------------------------------------------- catalog ----
@dataclass
class Catalog:
    """What the users ask about: lots, machines and the last factory day of the warehouse."""

    lots: list[tuple[str, str]]  # (CONTAINERID, CONTAINERNAME)
    split_lots: list[str]  # CONTAINERIDs with a parent: lineage has something to walk
    equipment: list[tuple[str, str]]  # (RESOURCEID, RESOURCENAME)
    end: date


def load_catalog(database_url: str, end: date, lots: int = 300, seed: int = 1) -> Catalog:
    from mesdash.core.db.warehouse import Warehouse

    wh = Warehouse(database_url)
    try:
        lot_rows = wh.read_sql_df(
            "SELECT CONTAINERID, CONTAINERNAME FROM dwh.DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT'"
            " ORDER BY CONTAINERID"
        ).to_dicts()
        split_rows = wh.read_sql_df(
            "SELECT CONTAINERID FROM dwh.DW_MES_CONTAINER WHERE SPLITFROMID IS NOT NULL ORDER BY CONTAINERID"
        ).to_dicts()
        eq_rows = wh.read_sql_df(
            "SELECT RESOURCEID, RESOURCENAME FROM dwh.DW_MES_RESOURCE ORDER BY RESOURCEID"
        ).to_dicts()
    finally:
        wh.close()
    rng = random.Random(seed)
    picked = rng.sample(lot_rows, min(lots, len(lot_rows)))
    splits = rng.sample(split_rows, min(lots, len(split_rows)))
    return Catalog(
        lots=[(r["CONTAINERID"], r["CONTAINERNAME"]) for r in picked],
        split_lots=[r["CONTAINERID"] for r in splits],
        equipment=[(r["RESOURCEID"], r["RESOURCENAME"]) for r in eq_rows],
        end=end,
    )


# ---------------------------------------------------------------------- records ----
@dataclass
class Sample:
    route: str
    status: int  # 0: no response (see error)
    seconds: float
    retry_after: bool = False
    code: str | None = None
    error: str | None = None  # client-side exception class
    at: float = 0.0  # when it was sent, seconds after the load started


@dataclass
class JobOutcome:
    job_id: str
    kind: str
    status: str  # terminal status, or "stuck" when not terminal within the wait
    error_code: str | None
    seconds: float
    stream_problem: str | None = None  # None: stream complete, batches unique


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Report:
    samples: list[Sample] = field(default_factory=list)
    jobs: list[JobOutcome] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    users: int = 0

    def routes(self) -> dict[str, dict[str, Any]]:
        grouped: dict[str, list[Sample]] = {}
        for s in self.samples:
            grouped.setdefault(s.route, []).append(s)
        table = {}
        for route, rows in sorted(grouped.items()):
            ok = [r.seconds * 1000 for r in rows if r.status and r.status < 400]
            table[route] = {
                "count": len(rows),
                "p50_ms": round(_pct(ok, 0.50), 1),
                "p95_ms": round(_pct(ok, 0.95), 1),
                "p99_ms": round(_pct(ok, 0.99), 1),
                "max_ms": round(max((r.seconds * 1000 for r in rows), default=0.0), 1),
                "statuses": dict(Counter(str(r.status or r.error) for r in rows)),
            }
        return table

    def codes(self) -> dict[str, int]:
        return dict(
            Counter(
                f"{s.status} {s.code or s.error or ''}".strip()
                for s in self.samples
                if s.status >= 400 or not s.status
            )
        )

    def job_summary(self) -> dict[str, int]:
        return dict(
            Counter(f"{j.kind}:{j.status}" + (f":{j.error_code}" if j.error_code else "") for j in self.jobs)
        )

    def summary(self) -> dict[str, Any]:
        ok = [s.seconds for s in self.samples if s.status and s.status < 400]
        return {
            "users": self.users,
            "seconds": round(self.elapsed, 1),
            "requests": len(self.samples),
            "throughput_rps": round(len(self.samples) / self.elapsed, 1) if self.elapsed else 0.0,
            "ok_p50_ms": round(_pct([x * 1000 for x in ok], 0.5), 1),
            "ok_p95_ms": round(_pct([x * 1000 for x in ok], 0.95), 1),
            "errors": self.codes(),
            "jobs": self.job_summary(),
        }

    def violations(
        self, allow_connect_errors: bool = False, allowed_4xx: frozenset[int] = frozenset({429})
    ) -> list[str]:
        found: list[str] = []
        for s in self.samples:
            where = f"{s.route} → {s.status or s.error} {s.code or ''}".strip()
            if s.status == 0:
                if s.error and "Timeout" in s.error:
                    found.append(f"timed out: {where}")
                elif not allow_connect_errors:
                    found.append(f"no response: {where}")
            elif s.status == 503 and s.code not in DESIGNED_503:
                found.append(f"undesigned 503: {where}")
            elif s.status == 504 and s.code not in DESIGNED_504:
                found.append(f"undesigned 504: {where}")
            elif s.status >= 500 and s.status not in (503, 504):
                found.append(f"5xx: {where}")
            elif 400 <= s.status < 500 and s.status not in allowed_4xx:
                found.append(f"unexpected {s.status}: {where}")
            if s.status in (429, 503) and not s.retry_after:
                found.append(f"no Retry-After: {where}")
        for j in self.jobs:
            if j.status == "stuck":
                found.append(f"job not terminal: {j.job_id}")
            elif j.status == "failed" and not j.error_code:
                found.append(f"job failed without a reason: {j.job_id}")
            if j.stream_problem:
                found.append(f"job stream {j.job_id}: {j.stream_problem}")
        return sorted(set(found))

    def markdown(self) -> str:
        lines = [
            "| route | n | p50 ms | p95 ms | p99 ms | max ms | statuses |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for route, row in self.routes().items():
            statuses = ", ".join(f"{k}×{v}" for k, v in sorted(row["statuses"].items()))
            lines.append(
                f"| `{route}` | {row['count']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} "
                f"| {row['max_ms']} | {statuses} |"
            )
        return "\n".join(lines)


# ------------------------------------------------------------------------ users ----

def _problem_code(path: str, response: httpx.Response) -> str | None:
    """The ``code`` of an error answer (``NOT_JSON`` when the body is no JSON object);
    ``HEALTH_UNHEALTHY`` for /health's own unhealthy report."""
    if response.status_code < 400:
        return None
    if "json" not in response.headers.get("content-type", ""):
        return "NOT_JSON"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "NOT_JSON"
    if not isinstance(body, dict):
        return "NOT_JSON"
    if path == "/health" and body.get("status") == "unhealthy":
        return "HEALTH_UNHEALTHY"
    code = body.get("code")
    return str(code) if code else None


class User:
    def __init__(self, driver: Driver, index: int) -> None:
        self.driver = driver
        self.rng = random.Random(driver.seed * 1000 + index)
        self.client = httpx.AsyncClient(
            base_url=driver.base,
            timeout=httpx.Timeout(driver.timeout),
            headers={"Authorization": f"Bearer load-user-{index}"},
            # a fresh connection per request: gunicorn closes idle keep-alive connections after
            # WEB_KEEPALIVE_SECONDS, and a client loop busy parsing a large answer would otherwise
            # send on a connection the server is closing (a client-side race, not a server fault)
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    @property
    def cat(self) -> Catalog:
        return self.driver.catalog

    async def call(
        self, method: str, path: str, route: str | None = None, **kwargs: Any
    ) -> httpx.Response | None:
        if not self.driver.may_send():
            raise _Done
        route = route or f"{method} {path}"
        start = time.monotonic()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.driver.record(Sample(route, 0, time.monotonic() - start, error=type(exc).__name__))
            return None
        self.driver.record(
            Sample(
                route,
                response.status_code,
                time.monotonic() - start,
                "retry-after" in response.headers,
                _problem_code(path, response),
            )
        )
        return response

    async def download(self, path: str, route: str, **params: Any) -> None:
        """An export read to its last byte (the time covers the whole body)."""
        if not self.driver.may_send():
            raise _Done
        start = time.monotonic()
        try:
            async with self.client.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    await response.aread()  # a problem body: small, and its code is recorded
                else:
                    async for _ in response.aiter_bytes():
                        pass
                self.driver.record(
                    Sample(
                        route,
                        response.status_code,
                        time.monotonic() - start,
                        "retry-after" in response.headers,
                        _problem_code(path, response),
                    )
                )
        except httpx.HTTPError as exc:
            self.driver.record(Sample(route, 0, time.monotonic() - start, error=type(exc).__name__))

    # ---------------------------------------------------------------- helpers ----
    def range(self, days: list[int]) -> dict[str, str]:
        """A date range users look at: ending on the last day or a month end, of set lengths."""
        end = self.cat.end - timedelta(days=self.rng.choice([0, 0, 0, 7, 30]))
        span = self.rng.choice(days)
        return {"start_date": (end - timedelta(days=span - 1)).isoformat(), "end_date": end.isoformat()}

    async def primary(self, path: str, body: dict[str, Any], kind: str) -> str | None:
        """POST a report query; on 202 follow the job; the dataset's query_id or None."""
        response = await self.call("POST", path, json=body)
        if response is None or response.status_code not in (200, 202):
            return None
        payload = response.json()
        if response.status_code == 200:
            return str(payload["query_id"])
        result = await self.follow_job(payload, kind)
        return str(result["query_id"]) if result and "query_id" in result else None

    async def follow_job(self, accepted: dict[str, Any], kind: str) -> dict[str, Any] | None:
        job_id = accepted["job_id"]
        start = time.monotonic()
        status: dict[str, Any] = {}
        while time.monotonic() - start < self.driver.job_wait:
            try:
                response = await self.call(
                    "GET", accepted["status_url"], route=f"GET /api/jobs/{{id}} ({kind})"
                )
            except _Done:
                self.driver.settle_soon(accepted, kind)  # followed from now on, judged after the run
                raise
            if response is not None and response.status_code == 200:
                status = response.json()
                if status["status"] in TERMINAL:
                    break
            await asyncio.sleep(0.5)
        else:
            self.driver.jobs.append(JobOutcome(job_id, kind, "stuck", None, time.monotonic() - start))
            return None
        error = status.get("error") or {}
        outcome = JobOutcome(job_id, kind, status["status"], error.get("code"), time.monotonic() - start)
        self.driver.jobs.append(outcome)
        if status["status"] != "finished":
            return None
        if accepted.get("stream_url"):
            outcome.stream_problem = await self.check_stream(accepted["stream_url"])
        return dict(status.get("result") or {})

    async def check_stream(self, url: str) -> str | None:
        start = time.monotonic()
        route = "GET /api/trace/job/{id}/stream"
        try:
            response = await self.client.get(url)
        except httpx.HTTPError as exc:
            self.driver.record(Sample(route, 0, time.monotonic() - start, error=type(exc).__name__))
            return None  # the request failure is judged as a request, not as a lost result
        self.driver.record(
            Sample(
                route,
                response.status_code,
                time.monotonic() - start,
                "retry-after" in response.headers,
                _problem_code(url, response),
            )
        )
        if response.status_code != 200:
            return None
        lines = [orjson.loads(line) for line in response.content.splitlines() if line.strip()]
        kinds = [line["type"] for line in lines]
        if kinds and kinds[-1] == "error" and lines[-1].get("code") == "CACHE_EXPIRED":
            # the results expired while the stream read them: judged like a view's 410
            # CACHE_EXPIRED (designed where TTLs are short, as in the soak; a violation elsewhere)
            self.driver.record(Sample(f"{route} (ended)", 410, time.monotonic() - start, code="CACHE_EXPIRED"))
            return None
        batches = [line["batch"] for line in lines if line["type"] == "records"]
        if kinds.count("meta") != 1 or kinds[0] != "meta":
            return f"meta lines {kinds.count('meta')}"
        if len(batches) != len(set(batches)):
            return f"duplicated batches {sorted(batches)}"
        if kinds[-1] != "complete":
            return f"ends with {kinds[-1]}"
        return None

    # -------------------------------------------------------------- scenarios ----
    async def health(self) -> None:
        await self.call("GET", "/health")
        if self.rng.random() < 0.3:
            await self.call("GET", "/api/warehouse/summary")

    async def trace(self) -> None:
        picked = self.rng.sample(self.cat.lots, self.rng.choice([1, 3, 5]))
        await self.call(
            "POST", "/api/trace/seed-resolve", json={"input_type": "lot_id", "values": [n for _, n in picked]}
        )
        ids = [cid for cid, _ in picked]
        if self.rng.random() < 0.5:
            ids = self.rng.sample(self.cat.split_lots, len(ids))
        direction = self.rng.choice(["backward", "forward"])
        await self.call("POST", "/api/trace/lineage", json={"container_ids": ids, "direction": direction})
        domains = self.rng.sample(DOMAINS, 2)
        await self.call("POST", "/api/trace/events", json={"container_ids": ids, "domains": domains})

    async def trace_job(self) -> None:
        # a handful of fixed lot sets: repeated requests reuse the deterministic job id
        offset = self.rng.randrange(5) * 60
        ids = [cid for cid, _ in self.cat.lots[offset : offset + self.rng.choice([30, 60])]]
        body = {"container_ids": ids, "domains": ["history", "rejects", "holds"], "lineage": "backward"}
        response = await self.call(
            "POST", "/api/trace/events", route="POST /api/trace/events (job)", json=body
        )
        if response is not None and response.status_code == 202:
            await self.follow_job(response.json(), "trace")

    async def reject(self) -> None:
        body = self.range([7, 30, 90]) if self.rng.random() > 0.05 else self.range([300])
        query_id = await self.primary("/api/reject-history/query", body, "reject")
        if not query_id:
            return
        q = {"query_id": query_id}
        await self.call("GET", "/api/reject-history/summary", params=q)
        await self.call(
            "GET", "/api/reject-history/trend", params={**q, "granularity": self.rng.choice(["day", "week"])}
        )
        await self.call("GET", "/api/reject-history/reason-pareto", params=q)
        dim = self.rng.choice(["package", "workcenter_group", "machine"])
        await self.call("GET", "/api/reject-history/pareto", params={**q, "dimension": dim})
        await self.call("GET", "/api/reject-history/list", params={**q, "page": self.rng.randint(1, 3)})
        if self.rng.random() < 0.1:
            await self.download("/api/reject-history/export", "GET /api/reject-history/export", **q)

    async def hold(self) -> None:
        body = self.range([7, 30, 90]) if self.rng.random() > 0.05 else self.range([270])
        query_id = await self.primary("/api/hold-history/query", body, "hold-history")
        if not query_id:
            return
        q = {"query_id": query_id}
        for view in ("trend", "summary", "pareto", "durations", "list"):
            await self.call("GET", f"/api/hold-history/{view}", params=q)
        if self.rng.random() < 0.3:
            await self.call("GET", "/api/hold-history/today")
        if self.rng.random() < 0.1:
            await self.download("/api/hold-history/export", "GET /api/hold-history/export", **q)

    async def resource(self) -> None:
        body = self.range([7, 30, 90]) if self.rng.random() > 0.05 else self.range([270])
        query_id = await self.primary("/api/resource-history/query", body, "resource-history")
        if not query_id:
            return
        q = {"query_id": query_id, "granularity": self.rng.choice(["day", "week"])}
        for view in ("summary", "trend", "heatmap", "detail"):
            await self.call("GET", f"/api/resource-history/{view}", params=q)
        if self.rng.random() < 0.1:
            await self.download("/api/resource-history/export", "GET /api/resource-history/export", **q)

    async def job_query(self) -> None:
        machines = [name for _, name in self.rng.sample(self.cat.equipment, 3)]
        query_id = await self.primary(
            "/api/job-query/query", {**self.range([30, 90]), "machines": machines}, "job-query"
        )
        if query_id:
            await self.call("GET", "/api/job-query/jobs", params={"query_id": query_id})
            await self.call("GET", "/api/job-query/breakdown", params={"query_id": query_id})

    async def query_tool(self) -> None:
        cid, name = self.rng.choice(self.cat.lots)
        eq_id, eq_name = self.rng.choice(self.cat.equipment)
        await self.call("GET", "/api/query-tool/equipment", params={"q": eq_name[:4]})
        period = {
            "equipment_ids": [eq_id],
            **self.range([7, 30]),
            "query_type": self.rng.choice(["status_hours", "lots"]),
        }
        await self.call("POST", "/api/query-tool/equipment-period", json=period)
        csv = self.rng.random() < 0.2
        await self.call(
            "POST",
            "/api/query-tool/lot-equipment",
            route="POST /api/query-tool/lot-equipment" + (" (csv)" if csv else ""),
            params={"format": "csv" if csv else "json"},
            json={"input_type": "lot_id", "values": [name]},
        )
        await self.call("GET", "/api/query-tool/split-merge-history", params={"container_id": cid})
        await self.call("GET", "/api/query-tool/adjacent-lots", params={"container_id": cid})
        await self.call(
            "GET",
            f"/api/query-tool/equipment-recent-jobs/{eq_id}",
            route="GET /api/query-tool/equipment-recent-jobs/{id}",
        )

    async def run(self) -> None:
        scenarios: list[tuple[Callable[[], Awaitable[None]], int]] = [
            (self.health, 10),
            (self.trace, 25),
            (self.trace_job, 5),
            (self.reject, 18),
            (self.hold, 12),
            (self.resource, 12),
            (self.job_query, 5),
            (self.query_tool, 13),
        ]
        funcs = [f for f, _ in scenarios]
        weights = [w for _, w in scenarios]
        await asyncio.sleep(self.rng.random() * self.driver.ramp_seconds)
        try:
            while self.driver.may_send():
                await self.rng.choices(funcs, weights)[0]()
                await asyncio.sleep(self.rng.random() * self.driver.think_seconds)
        except _Done:
            pass
        finally:
            await self.client.aclose()


class _Done(Exception):
    """The deadline or the request budget is spent."""


@dataclass
class Driver:
    base: str
    catalog: Catalog
    users: int = 50
    seconds: float = 60.0
    max_requests: int = 100_000
    timeout: float = 90.0  # per request; a request past it counts as hung
    job_wait: float = 180.0  # a job not terminal this long after 202 counts as stuck
    think_seconds: float = 0.5
    ramp_seconds: float = 3.0
    seed: int = 1
    report: Report = field(default_factory=Report)
    settling: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)  # set: users stop now

    @property
    def jobs(self) -> list[JobOutcome]:
        return self.report.jobs

    def record(self, sample: Sample) -> None:
        sample.at = time.monotonic() - sample.seconds - self.report.started
        self.report.samples.append(sample)

    def may_send(self) -> bool:
        return (
            not self.stopped.is_set()
            and time.monotonic() - self.report.started < self.seconds
            and len(self.report.samples) < self.max_requests
        )

    async def run(self) -> Report:
        self.report = Report(users=self.users)
        await asyncio.gather(*(User(self, i).run() for i in range(self.users)))
        self.report.elapsed = time.monotonic() - self.report.started
        await self.drain()
        return self.report

    async def drain(self) -> None:
        """Jobs still running when the load stopped: each must still reach a terminal state
        within ``job_wait`` of the stop."""
        await asyncio.gather(*self.settling)

    def settle_soon(self, accepted: dict[str, Any], kind: str) -> None:
        """Follow a job the load stopped following, from now on: waiting for every user's last
        request first (up to ``timeout``) let a finished job's record outlive its TTL (60 s
        in the soak) before the first look, which then saw 404 and counted it as stuck."""
        self.settling.append(asyncio.get_running_loop().create_task(self._settle(accepted, kind)))

    async def _settle(self, accepted: dict[str, Any], kind: str) -> None:
        start = time.monotonic()
        status: dict[str, Any] = {"status": "stuck"}
        async with httpx.AsyncClient(base_url=self.base, timeout=httpx.Timeout(self.timeout)) as client:
            while time.monotonic() - start < self.job_wait and not self.stopped.is_set():
                try:
                    response = await client.get(accepted["status_url"])
                    if response.status_code == 200 and response.json()["status"] in TERMINAL:
                        status = response.json()
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        error = status.get("error") or {}
        self.report.jobs.append(
            JobOutcome(accepted["job_id"], kind, status["status"], error.get("code"), time.monotonic() - start)
        )


def run_load(base: str, catalog: Catalog, **kwargs: Any) -> Report:
    """Run the driver on its own event loop in a thread of its own: the caller's thread may
    already run a loop (Playwright's sync API keeps one in the main thread of a test session)."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="load-driver") as pool:
        return pool.submit(lambda: asyncio.run(Driver(base, catalog, **kwargs).run())).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--database-url", required=True, help="where to pick lots and machines from")
    parser.add_argument("--end", default=None, help="last factory day of the data (default: yesterday)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args()
    end = date.fromisoformat(args.end) if args.end else date.today() - timedelta(days=1)
    report = run_load(
        args.base,
        load_catalog(args.database_url, end),
        users=args.users,
        seconds=args.seconds,
        max_requests=args.max_requests,
    )
    print(orjson.dumps(report.summary(), option=orjson.OPT_INDENT_2).decode())
    print(report.markdown())
    for line in report.violations():
        print("VIOLATION", line)


if __name__ == "__main__":
    main()
