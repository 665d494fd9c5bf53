"""`ArgoJobRunner`: Galaxy's job runner plugin for Argo Workflows, with no shared filesystem.

Load it in Galaxy's job config::

    runners:
      argo:
        load: galaxy_argo.galaxy.runner:ArgoJobRunner
        workers: 4
    execution:
      environments:
        argo_env:
          runner: argo
          docker_enabled: true
          outputs_to_working_directory: true
          argo_server_url: https://argo.example.org:2746
          ...

The flow (DESIGN.md, "Galaxy side"):

- ``queue_job`` (worker thread): Galaxy prepares the job with `ArgoComputeEnvironment` so the
  command line has pod paths; inputs, tool directory and job directory go to S3 (`build_plan`);
  the job compiles to one Workflow, submitted through Hera under a deterministic name (a 409 adopts
  the same job's workflow: a handler that died after submitting never runs a job twice).
- ``check_watched_items`` (monitor thread): one label-selected, projected LIST per Argo connection
  and cycle; a full GET only for workflows that just ended or that the LIST did not show, and a
  budgeted few for those whose pod still waits (`_PENDING_READS_PER_CYCLE`).
- ``finish_job`` (worker thread): the job directory and every output come back, each output
  checked against the sha256 the pod recorded, then Galaxy's own ``finish``.
- Failures the tool did not cause become one line for the user (`galaxy_argo.core.outcome`) and the
  runner states Galaxy's ``resubmit`` rules act on (OOM -> ``memory_limit_reached``).
"""

from __future__ import annotations

import functools
import glob
import heapq
import logging
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from galaxy import model
from galaxy.jobs.command_factory import build_command
from galaxy.jobs.runners import AsynchronousJobRunner, AsynchronousJobState, JobState
from galaxy.tools.expressions import ExpressionTemplateError
from galaxy.tools.parameters.basic import ParameterValueError
from galaxy.util import asbool, unicodify
from sqlalchemy import func, select

from galaxy_argo.clients.argo import ArgoError, ArgoUnavailable
from galaxy_argo.clients.connections import Connection, ConnectionPool, resolve_embedded
from galaxy_argo.clients.staging import Download, StagingError, StagingUnavailable
from galaxy_argo.core.compile import compile_model
from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.metrics import METRICS_PLUGIN, seconds_between, workflow_metrics
from galaxy_argo.core.outcome import JobOutcome, OutcomeState, deleted_outcome, outcome_of, workflow_condition
from galaxy_argo.core.settings import ArgoSettings, CleanupPolicy
from galaxy_argo.galaxy.compute_env import POD_JOB, POD_TOOL, ArgoComputeEnvironment
from galaxy_argo.galaxy.metadata import direct_store, metadata_command_for_pod
from galaxy_argo.galaxy.object_store import backend_of, object_size
from galaxy_argo.galaxy.plan import SHA256, JobPlan, OutputTarget, build_plan, known_sha256

__all__ = ["ArgoJobRunner", "ArgoJobState"]

log = logging.getLogger(__name__)

#: Pulsar's marker makes Galaxy reference tool_script.sh at `script_directory` (a pod path) and
#: send tool stdout/stderr to metadata/; see galaxy/jobs/command_factory.py.
_REMOTE_COMMAND_PARAMS = {
    "pulsar_version": "0.15.16",
    "script_directory": POD_JOB,
    "working_directory": POD_JOB,
    "dependency_resolution": "none",
}
#: Galaxy streams the tool's stdout/stderr through background ``tee`` processes and does not wait
#: for them: on a shared filesystem they finish later, but a container ends with its script and
#: takes them along, so a quick tool's output could be lost (seen 1 job in 60). Wait for them.
_AWAIT_STREAMS = "\nwait  # galaxy-argo: the tee processes writing metadata/tool_stdout and tool_stderr\n"
_RUNNER_STATE = {
    OutcomeState.OOM: JobState.runner_states.MEMORY_LIMIT_REACHED,
    OutcomeState.WALLTIME: JobState.runner_states.WALLTIME_REACHED,
}
_ENDED_PHASES = ("Succeeded", "Failed", "Error")
#: A workflow Argo shows Running whose pod has not started (its image pulling, no node free) is
#: read whole to learn why, each at most every `_PENDING_EVERY` poll cycles and at most
#: `_PENDING_READS_PER_CYCLE` per cycle, the longest unread first: a backlog of waiting jobs
#: never turns one LIST per cycle into one GET per job. A pod that runs is seen in the LIST
#: itself (Argo's ``PodRunning`` condition), without a read.
_PENDING_EVERY = 5
_PENDING_READS_PER_CYCLE = 10


class ArgoJobState(AsynchronousJobState):
    """Galaxy's job state plus the destination's settings and the saved plan."""

    settings: ArgoSettings
    #: The clients of the destination, shared with every job on the same endpoints.
    connection: Connection
    plan: JobPlan | None = None
    outcome: JobOutcome | None = None
    #: `workflow_metrics` of the ended workflow, stored with the job when it finishes or fails.
    metrics: dict[str, float | str] | None = None
    fail_message: str
    #: When the current outage (Argo Server or S3 unreachable) began, and retries since.
    outage_began: float | None = None
    outage_retries: int = 0
    #: What a submission retry needs again (`queue_job` prepared them once).
    compute_environment: ArgoComputeEnvironment | None = None
    container: Any = None
    began: float = 0.0
    #: The runner's poll cycle in which this job's waiting workflow was last read whole.
    read_cycle: int = -_PENDING_EVERY


#: Seconds between retries while an endpoint is unreachable (the last one repeats).
_OUTAGE_BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)


#: Length of the failure message Galaxy keeps (``dataset.info``, ``job.info``).
_GALAXY_INFO_CHARS = 255


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tmp_dir_statement(job_wrapper: Any) -> str:
    # Same rule as MinimalJobWrapper.tmp_dir_creation_statement, with the pod's job directory.
    explicit = job_wrapper.get_destination_configuration("tmp_dir", None)
    if explicit and not asbool(explicit):
        return str(explicit)
    tmp = f"{POD_JOB}/tmp"
    return f"$([ ! -e '{tmp}' ] || mv '{tmp}' '{tmp}'.$(date +%Y%m%d-%H%M%S) ; mkdir '{tmp}'; echo '{tmp}')"


class ArgoJobRunner(AsynchronousJobRunner):
    """Runs Galaxy jobs as Argo Workflows; results travel through S3."""

    runner_name = "ArgoRunner"

    def __init__(self, app: Any, nworkers: int, **kwargs: Any) -> None:
        """Runner-level params are defaults for every destination of this runner.

        Any `ArgoSettings` field may be given under the runner in the job config; a destination's
        own params override it. ``poll_interval`` (seconds) sets how often workflows are polled.
        """
        specs: dict[str, dict[str, Any]] = {
            name: {"map": str, "default": None} for name in ArgoSettings.__dataclass_fields__
        }
        specs["poll_interval"] = {"map": float, "valid": lambda x: float(x) > 0, "default": None}
        kwargs["runner_param_specs"] = specs
        super().__init__(app, nworkers, **kwargs)
        self._defaults = {
            name: value
            for name in ArgoSettings.__dataclass_fields__
            if (value := self.runner_params.get(name)) is not None
        }
        # Validate the runner-level defaults once at start-up: a typo fails Galaxy's start, loudly.
        ArgoSettings.from_params(self._defaults)
        self.connections = ConnectionPool()
        self._cycle = 0

    @property
    def monitor_sleep_time(self) -> float:
        """``poll_interval`` if set, else Galaxy's ``job_runner_monitor_sleep``."""
        interval = self.runner_params.get("poll_interval")
        return float(interval) if interval else float(self.app.config.job_runner_monitor_sleep)

    # -- settings and connections -------------------------------------------------------------

    def settings_for(self, job_wrapper: Any) -> ArgoSettings:
        """The destination's settings (runner defaults, then destination params), resolved."""
        params = {**self._defaults, **(job_wrapper.job_destination.params or {})}
        return resolve_embedded(ArgoSettings.from_params(params))

    # -- queue ----------------------------------------------------------------------------------

    def queue_job(self, job_wrapper: Any) -> None:
        """Prepare, stage, compile and submit one job (worker thread)."""
        began = time.monotonic()
        job_id = job_wrapper.get_id_tag()
        state = job_wrapper.get_state()
        if state == model.Job.states.DELETED:
            if self.app.config.cleanup_job in ("always", "onsuccess"):
                job_wrapper.cleanup()
            return
        if state != model.Job.states.QUEUED:
            log.info("(%s) job is %s, not submitting it", job_id, state)
            return
        try:
            settings = self.settings_for(job_wrapper)
        except GalaxyArgoError as err:
            job_wrapper.fail(f"Argo destination {job_wrapper.job_destination.id!r} is misconfigured: {err}")
            return
        ajs = ArgoJobState(
            job_wrapper=job_wrapper,
            job_destination=job_wrapper.job_destination,
            files_dir=job_wrapper.working_directory,
        )
        ajs.settings = settings
        ajs.connection = self.connections.get(settings)
        ce = ArgoComputeEnvironment(job_wrapper, settings.reference_data)
        try:
            if job_wrapper.prepare(compute_environment=ce) is False:
                return  # job cache hit
            container = self._find_container(
                job_wrapper,
                compute_working_directory=f"{POD_JOB}/working",
                compute_tool_directory=POD_TOOL,
                compute_job_directory=POD_JOB,
                compute_tmp_directory=f"{POD_JOB}/tmp",
            )
            if container is None and asbool(job_wrapper.job_destination.params.get("require_container")):
                raise GalaxyArgoError("this destination requires a container and none was found for the tool")
            os.makedirs(os.path.join(job_wrapper.working_directory, "metadata"), exist_ok=True)
            job_wrapper.runner_command_line = build_command(
                self,
                job_wrapper,
                container=container,
                modify_command_for_container=False,
                include_metadata=False,
                include_work_dir_outputs=False,
                remote_command_params=dict(_REMOTE_COMMAND_PARAMS),
                remote_job_directory=POD_JOB,
                stream_stdout_stderr=True,
            )
            if job_wrapper.runner_command_line:
                job_wrapper.runner_command_line += _AWAIT_STREAMS
        except (ParameterValueError, ExpressionTemplateError) as err:
            job_wrapper.fail(unicodify(err), exception=False)
            return
        except Exception as err:
            log.exception("(%s) failure preparing job", job_id)
            job_wrapper.fail(unicodify(err), exception=True)
            return
        if not job_wrapper.runner_command_line:
            job_wrapper.finish("", "")
            return
        ajs.compute_environment, ajs.container, ajs.began = ce, container, began
        self._try_submit(ajs)

    def _try_submit(self, ajs: ArgoJobState) -> None:
        """Submit; while the Argo Server or S3 is unreachable, keep the job queued and retry.

        Retrying is safe: objects are content-addressed or per workflow name, and a workflow
        that was created before the connection broke is adopted by name (one workflow per job).
        """
        job_wrapper = ajs.job_wrapper
        if job_wrapper.get_state() in (model.Job.states.DELETED, model.Job.states.DELETING):
            log.info("(%s) deleted while waiting to be submitted", job_wrapper.get_id_tag())
            return
        try:
            self._submit(ajs)
            ajs.outage_began, ajs.outage_retries = None, 0
        except (ArgoUnavailable, StagingUnavailable) as err:
            if not self._retry_later(ajs, "submission", self._try_submit, err):
                self._fail_submission(ajs, err)
        except (GalaxyArgoError, OSError) as err:
            self._fail_submission(ajs, err)

    def _fail_submission(self, ajs: ArgoJobState, err: Exception) -> None:
        log.warning("(%s) submission to Argo failed: %s", ajs.job_wrapper.get_id_tag(), err)
        ajs.runner_state = JobState.runner_states.UNKNOWN_ERROR
        ajs.fail_message = f"could not submit the job to Argo: {err}"
        ajs.stop_job = False
        self.mark_as_failed(ajs)

    def _retry_later(self, ajs: ArgoJobState, what: str, method: Any, err: Exception) -> bool:
        """Put ``method(ajs)`` back on the work queue after a backoff.

        ``False`` (nothing scheduled) once the outage has lasted the destination's ``outage_window``.
        """
        now = time.monotonic()
        if ajs.outage_began is None:
            ajs.outage_began = now
        if now - ajs.outage_began >= ajs.settings.outage_window:
            return False
        delay = _OUTAGE_BACKOFF[min(ajs.outage_retries, len(_OUTAGE_BACKOFF) - 1)]
        ajs.outage_retries += 1
        log.warning(
            "(%s) %s waits for an endpoint (attempt %d, next in %.0f s): %s",
            ajs.job_wrapper.get_id_tag(),
            what,
            ajs.outage_retries,
            delay,
            err,
        )
        timer = threading.Timer(delay, self.work_queue.put, args=((method, ajs),))
        timer.daemon = True
        timer.start()
        return True

    def _attempt(self, job: Any) -> int:
        """Resubmissions so far (Galaxy keeps the job id and clears the external id)."""
        count = self.sa_session.scalar(
            select(func.count())
            .select_from(model.JobStateHistory)
            .where(
                model.JobStateHistory.job_id == job.id,
                model.JobStateHistory.state == model.Job.states.RESUBMITTED,
            )
        )
        return int(count or 0)

    def _work_dir_outputs(self, job_wrapper: Any) -> dict[str, str]:
        """Output host path -> pod path of its ``from_work_dir`` source."""
        return {
            str(dest): src
            for src, dest in self.get_work_dir_outputs(
                job_wrapper, tool_working_directory=f"{POD_JOB}/working"
            )
        }

    def _submit(self, ajs: ArgoJobState) -> None:
        """Stage, compile and submit with what `queue_job` prepared (kept on ``ajs`` for retries)."""
        ce, container = ajs.compute_environment, ajs.container
        if ce is None:
            raise GalaxyArgoError(f"job {ajs.job_id} reached submission before queue_job prepared it")
        job_wrapper = ajs.job_wrapper
        settings = ajs.settings
        job = job_wrapper.get_job()
        direct = direct_store(job_wrapper, settings, self.app)
        work_dir_outputs = self._work_dir_outputs(job_wrapper)
        metadata_command = metadata_command_for_pod(job_wrapper, settings, work_dir_outputs)
        script = self.get_job_file(
            job_wrapper,
            working_directory=POD_JOB,
            shell=job_wrapper.shell,
            galaxy_virtual_env=None,
            galaxy_lib=None,
            tmp_dir_creation_statement=_tmp_dir_statement(job_wrapper),
        )
        self.write_executable_script(ajs.job_file, script, job_io=job_wrapper.job_io)
        ajs.init_job_stream_files()
        image = getattr(container, "container_id", None) if container is not None else None
        if container is not None and getattr(container, "container_type", "docker") != "docker":
            image = None
        connection = ajs.connection
        job_url = ""
        if settings.galaxy_url:
            job_url = f"{settings.galaxy_url}/jobs/{self.app.security.encode_id(job.id)}/view"
        spec, plan = build_plan(
            job_wrapper,
            ce,
            settings,
            connection.stager,
            command_line=f"{job_wrapper.shell} {POD_JOB}/{os.path.basename(ajs.job_file)}",
            image=image,
            attempt=self._attempt(job),
            metadata_command=metadata_command,
            job_url=job_url,
            direct=direct,
            work_dir_outputs=work_dir_outputs,
        )
        for note in direct.notes if direct is not None else ():
            log.info("(%s) %s", job_wrapper.get_id_tag(), note)
        plan.save(job_wrapper.working_directory)
        name, adopted = connection.argo.submit(compile_model(spec, settings))
        plan.submit_seconds = round(time.monotonic() - ajs.began, 3)
        plan.save(job_wrapper.working_directory)
        if adopted:
            log.info("(%s) adopted existing workflow %s", job_wrapper.get_id_tag(), name)
        ajs.job_id = name
        ajs.plan = plan
        job_wrapper.set_external_id(name)
        log.info(
            "(%s) submitted workflow %s (%d input bytes uploaded, %d objects reused)",
            job_wrapper.get_id_tag(),
            name,
            plan.uploaded_bytes,
            plan.reused_objects,
        )
        if job_wrapper.get_state() in (model.Job.states.DELETED, model.Job.states.DELETING):
            # Deleted while we uploaded: the handler found no external id to stop then.
            self.stop_job(job_wrapper)
            return
        self.monitor_queue.put(ajs)

    # -- monitor --------------------------------------------------------------------------------

    def check_watched_items(self) -> None:
        """One LIST per Argo connection; act on every watched job from it."""
        if not self.watched:
            return
        self._cycle += 1
        groups: dict[int, tuple[Connection, list[ArgoJobState]]] = {}
        for ajs in self.watched:
            groups.setdefault(id(ajs.connection), (ajs.connection, []))[1].append(ajs)
        still_watched: list[ArgoJobState] = []
        for connection, jobs in groups.values():
            try:
                listed = connection.argo.poll(connection.selector)
            except ArgoError as err:
                log.warning("polling Argo failed, keeping %d job(s) watched: %s", len(jobs), err)
                still_watched.extend(jobs)
                continue
            reads = self._pending_reads(jobs, listed)
            for ajs in jobs:
                try:
                    if self._check(ajs, connection, listed.get(str(ajs.job_id)), ajs in reads):
                        still_watched.append(ajs)
                except ArgoUnavailable as err:
                    log.warning("(%s) Argo unavailable, checking again later: %s", ajs.job_id, err)
                    still_watched.append(ajs)
                except Exception:
                    log.exception("(%s) unexpected error checking workflow", ajs.job_id)
                    ajs.runner_state = JobState.runner_states.UNKNOWN_ERROR
                    ajs.fail_message = "galaxy-argo could not read the workflow's status; see the handler log"
                    self.mark_as_failed(ajs)
        self.watched = still_watched

    def _pending_reads(
        self, jobs: list[ArgoJobState], listed: dict[str, dict[str, Any]]
    ) -> list[ArgoJobState]:
        """The waiting jobs whose workflow is read whole this cycle (`_PENDING_READS_PER_CYCLE`)."""
        due = []
        for ajs in jobs:
            status = (listed.get(str(ajs.job_id)) or {}).get("status") or {}
            if (
                not ajs.running
                and status.get("phase") == "Running"
                and workflow_condition(status, "PodRunning") != "True"
                and self._cycle - ajs.read_cycle >= _PENDING_EVERY
            ):
                due.append(ajs)
        chosen = heapq.nsmallest(_PENDING_READS_PER_CYCLE, due, key=lambda ajs: ajs.read_cycle)
        for ajs in chosen:
            ajs.read_cycle = self._cycle
        return chosen

    def _check(
        self,
        ajs: ArgoJobState,
        connection: Connection,
        listed: dict[str, Any] | None,
        pending_read: bool = False,
    ) -> bool:
        """Act on one job; return True to keep watching it.

        ``pending_read``: read the workflow whole although the LIST shows it waiting (`_pending_reads`).
        """
        name = str(ajs.job_id)
        persisted = ajs.job_wrapper.get_state()
        phase = ((listed or {}).get("status") or {}).get("phase")
        if persisted in (model.Job.states.DELETED, model.Job.states.DELETING):
            # The handler called stop_job; a stopping pod may still save artifacts, so the job's
            # objects are deleted (again) once the workflow has ended.
            if listed is not None and phase not in _ENDED_PHASES:
                return True
            if ajs.plan is None:
                ajs.plan = JobPlan.load(ajs.job_wrapper.working_directory)
            self._cleanup_objects(ajs, success=True)
            return False
        workflow = listed
        # The LIST is projected without nodes: read the workflow whole when it ended, vanished from
        # the LIST, or (budgeted) while its pod waits, to see an image that cannot be pulled.
        if listed is None or phase in _ENDED_PHASES or pending_read:
            workflow = connection.argo.get(name)
        plan = ajs.plan
        if workflow is None:
            outcome = deleted_outcome(name)
        else:
            outcome = outcome_of(
                workflow, memory_limit=plan.memory if plan else "", walltime=plan.walltime if plan else ""
            )
        if not outcome.state.finished:
            if outcome.state is OutcomeState.RUNNING and not ajs.running:
                ajs.running = True
                ajs.job_wrapper.change_state(model.Job.states.RUNNING)
            return True
        ajs.running = False
        ajs.outcome = outcome
        ajs.metrics = workflow_metrics(workflow) if workflow is not None else None
        if ajs.metrics is not None and workflow is not None:
            lag = seconds_between((workflow.get("status") or {}).get("finishedAt"), _now_rfc3339())
            if lag is not None:
                ajs.metrics["poll_lag_seconds"] = lag  # workflow ended -> this runner saw it
        if outcome.state in (OutcomeState.SUCCEEDED, OutcomeState.TOOL_FAILED, OutcomeState.METADATA_FAILED):
            self.mark_as_finished(ajs)  # Galaxy's own checks decide from exit code and stdio rules
            return False
        if outcome.state is OutcomeState.STOPPED and persisted == model.Job.states.STOPPED:
            self.mark_as_finished(ajs)
            return False
        ajs.runner_state = _RUNNER_STATE.get(outcome.state, JobState.runner_states.UNKNOWN_ERROR)
        ajs.fail_message = f"The job failed in Argo: {outcome.reason}"
        # A pod that cannot start (image pull, missing Secret) leaves the workflow running: stop it.
        ajs.stop_job = outcome.state.leaves_workflow_running
        log.info("(%s) %s: %s", ajs.job_wrapper.get_id_tag(), ajs.job_id, outcome.reason)
        self._note_failure(ajs, outcome)
        self.mark_as_failed(ajs)
        return False

    @staticmethod
    def _note_failure(ajs: ArgoJobState, outcome: JobOutcome) -> None:
        # Galaxy shows job stderr ("job messages") next to the tool's: say why there too.
        try:
            with open(ajs.error_file, "a") as handle:
                handle.write(f"galaxy-argo: {outcome.reason} (Argo: {outcome.phase} {outcome.message})\n")
        except OSError:
            pass

    # -- finish ---------------------------------------------------------------------------------

    def finish_job(self, job_state: Any) -> None:
        """Bring results back, verified, then let Galaxy finish the job (worker thread)."""
        ajs: ArgoJobState = job_state
        job_wrapper = ajs.job_wrapper
        collect_began = time.monotonic()
        try:
            self._collect(ajs)
        except StagingUnavailable as err:
            if self._retry_later(ajs, "collecting results", self.finish_job, err):
                return
            self._fail_collection(ajs, err)
            return
        except (GalaxyArgoError, OSError) as err:
            self._fail_collection(ajs, err)
            return
        timings = {"collect_seconds": time.monotonic() - collect_began}
        plan = ajs.plan
        if plan is not None and plan.metadata_remote:
            # Metadata temp files hold pod paths; Galaxy maps them to the local metadata directory.
            job_wrapper.finish = functools.partial(  # type: ignore[method-assign]
                job_wrapper.finish, remote_metadata_directory=f"{POD_JOB}/metadata"
            )
        elif job_wrapper.requires_setting_metadata:
            metadata_began = time.monotonic()
            self._handle_metadata_externally(job_wrapper, resolve_requirements=True)
            timings["local_metadata_seconds"] = time.monotonic() - metadata_began
        if ajs.metrics is not None:
            ajs.metrics.update({name: round(seconds, 3) for name, seconds in timings.items()})
        self._record_metrics(ajs)
        self._record_output_hashes(ajs)
        super().finish_job(ajs)
        self._cleanup_objects(ajs, success=job_wrapper.get_state() == model.Job.states.OK)

    def _fail_collection(self, ajs: ArgoJobState, err: Exception) -> None:
        log.warning("(%s) collecting results of %s failed: %s", ajs.job_wrapper.get_id_tag(), ajs.job_id, err)
        ajs.runner_state = JobState.runner_states.UNKNOWN_ERROR
        ajs.fail_message = f"The job's results could not be returned from Argo: {err}"
        ajs.stop_job = False
        self.fail_job(ajs)

    def _collect(self, ajs: ArgoJobState) -> None:
        job_wrapper = ajs.job_wrapper
        plan = ajs.plan or JobPlan.load(job_wrapper.working_directory)
        if plan is None:
            raise GalaxyArgoError(f"no galaxy-argo plan in {job_wrapper.working_directory}")
        ajs.plan = plan
        outcome = ajs.outcome
        manifest = (outcome.manifest if outcome else None) or {}
        if not manifest:
            raise GalaxyArgoError(f"workflow {ajs.job_id} ended without an outputs manifest")
        stager = ajs.connection.stager
        stager.fetch_bundle(plan.job_directory_key, Path(job_wrapper.working_directory))
        files = {f["name"]: f for f in manifest.get("files", [])}
        downloads = []
        for target in plan.outputs:
            entry = files.get(target.name)
            if entry is None:
                continue  # Galaxy reports a missing output itself (empty dataset / tool error)
            if target.bucket:
                self._check_written_in_place(ajs, target, int(entry["size"]))
                continue
            downloads.append(Download(target.key, Path(target.local_path), entry["size"], entry["sha256"]))
        stager.fetch_all(downloads)
        work = job_wrapper.working_directory
        for stream in ("tool_stdout", "tool_stderr"):
            src = os.path.join(work, "metadata", stream)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(work, "outputs", stream))
        exit_code_file = ajs.exit_code_file
        if not os.path.exists(exit_code_file) and isinstance(manifest.get("exit_code"), int):
            # Galaxy reads a missing .ec as success; the pod's own record says otherwise.
            with open(exit_code_file, "w") as handle:
                handle.write(f"{manifest['exit_code']}\n")
        if not any(target.bucket for target in plan.outputs):
            self._copy_work_dir_outputs(job_wrapper)  # in place: the pod's set_metadata did it

    def _check_written_in_place(self, ajs: ArgoJobState, target: OutputTarget, size: int) -> None:
        """The object the pod wrote has the size the pod recorded (one HEAD, no bytes).

        Galaxy's S3 store logs a refused upload and carries on, leaving the empty object the
        host created at job setup: without this check such an output would end ``ok`` and empty.
        """
        session = ajs.job_wrapper.sa_session
        dataset = session.get(model.Dataset, target.dataset_id) if target.dataset_id is not None else None
        backend = backend_of(self.app.object_store, getattr(dataset, "object_store_id", None))
        stored = object_size(backend, target.key)
        if stored != size:
            where = f"s3://{target.bucket}/{target.key}"
            found = "no object" if stored is None else f"{stored} bytes"
            secret = ajs.settings.object_store_secret or "the pod's cloud identity"
            raise GalaxyArgoError(
                f"output {os.path.basename(target.local_path)} was not written to Galaxy's object store: "
                f"{where} has {found}, the job wrote {size}; check that {secret} may s3:PutObject "
                f"on bucket {target.bucket}"
            )

    @staticmethod
    def _record_metrics(ajs: ArgoJobState) -> None:
        """Add Argo's numbers to the job (committed by the caller, or by Galaxy's ``finish``)."""
        metrics: dict[str, float | str] = dict(ajs.metrics or {})
        if ajs.plan is not None:
            metrics["uploaded_bytes"] = ajs.plan.uploaded_bytes
            metrics["reused_objects"] = ajs.plan.reused_objects
            metrics["submit_seconds"] = ajs.plan.submit_seconds
        job = ajs.job_wrapper.get_job()
        for name, value in metrics.items():
            job.add_metric(METRICS_PLUGIN, name, value)

    @staticmethod
    def _record_output_hashes(ajs: ArgoJobState) -> None:
        """Keep each output's verified sha256 as Galaxy's ``DatasetHash`` (committed by ``finish``).

        A later job reading the dataset then finds its content-addressed object with one request
        and no hashing on this host, across handlers and restarts. Only a digest that still
        describes the file is used (the cache is keyed by size and mtime), so an output a
        ``from_work_dir`` copy replaced afterwards gets none.
        """
        if ajs.plan is None:
            return
        hashes = ajs.connection.stager.hashes
        session = ajs.job_wrapper.sa_session
        manifest = (ajs.outcome.manifest if ajs.outcome else None) or {}
        pod_digests = {f["name"]: f.get("sha256") for f in manifest.get("files", [])}
        for target in ajs.plan.outputs:
            try:
                if target.bucket:
                    digest = pod_digests.get(target.name)  # the size in the store was checked
                else:
                    digest = hashes.known(Path(target.local_path)) if target.dataset_id is not None else None
            except OSError:
                continue
            dataset = session.get(model.Dataset, target.dataset_id) if digest else None
            if dataset is not None and known_sha256(dataset) is None:
                dataset.hashes.append(model.DatasetHash(hash_function=SHA256, hash_value=digest))

    def _copy_work_dir_outputs(self, job_wrapper: Any) -> None:
        # Galaxy's `if [ -f src -a -f dest ]; then cp src dest; fi` (command_factory), done here.
        for source, destination in self.get_work_dir_outputs(job_wrapper):
            matches = sorted(glob.glob(source)) or [source]
            src = matches[0]
            if os.path.isdir(src) and os.path.isdir(destination):
                shutil.rmtree(destination)
                shutil.copytree(src, destination)
            elif os.path.isfile(src):
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                shutil.copyfile(src, destination)

    def _cleanup_objects(self, ajs: ArgoJobState, success: bool) -> None:
        policy = ajs.settings.cleanup
        plan = ajs.plan
        if (
            plan is None
            or policy is CleanupPolicy.NEVER
            or (policy is CleanupPolicy.ONSUCCESS and not success)
        ):
            return
        try:
            ajs.connection.stager.delete_prefix(plan.key_prefix)
        except StagingError as err:
            log.warning("(%s) cleaning %s failed: %s", ajs.job_id, plan.key_prefix, err)

    def fail_job(
        self, job_state: Any, exception: bool = False, message: str = "Job failed", full_status: Any = None
    ) -> None:
        """Fail with the tool's own stdout/stderr when the job directory came back."""
        ajs = job_state
        if full_status is None:
            full_status = {}
            work = ajs.job_wrapper.working_directory
            for stream in ("stdout", "stderr"):
                for folder in ("metadata", "outputs"):
                    path = os.path.join(work, folder, f"tool_{stream}")
                    if os.path.exists(path):
                        with open(path, "rb") as handle:
                            full_status[stream] = self._job_io_for_db(handle)
                        break
        text = str(getattr(ajs, "fail_message", message))
        if len(text) > _GALAXY_INFO_CHARS:
            # Galaxy keeps 255 characters of the message; the whole of it goes to stderr.
            full_status["stderr"] = f"{full_status.get('stderr') or ''}galaxy-argo: {text}\n"
            ajs.fail_message = text[: _GALAXY_INFO_CHARS - 26].rstrip() + " ... (full text in stderr)"
        super().fail_job(ajs, exception=exception, message=message, full_status=full_status)
        if isinstance(ajs, ArgoJobState) and not ajs.runner_state_handled:
            # Not when resubmitted: the next attempt's numbers are the job's.
            self._record_metrics(ajs)
            ajs.job_wrapper.sa_session.commit()
        if isinstance(ajs, ArgoJobState) and hasattr(ajs, "settings"):
            self._cleanup_objects(ajs, success=False)

    # -- stop, recover, shutdown ----------------------------------------------------------------

    def stop_job(self, job_wrapper: Any) -> None:
        """Stop the job's workflow and delete its objects; never raises (Galaxy calls it freely)."""
        job = job_wrapper.get_job()
        name = job.get_job_runner_external_id()
        if not name:
            return
        try:
            settings = self.settings_for(job_wrapper)
            connection = self.connections.get(settings)
            if connection.argo.stop(name, message=f"Galaxy job {job.id} was stopped in Galaxy"):
                log.info("(%s) stopped workflow %s", job_wrapper.get_id_tag(), name)
            plan = JobPlan.load(job_wrapper.working_directory)
            if plan is not None and settings.cleanup is not CleanupPolicy.NEVER:
                connection.stager.delete_prefix(plan.key_prefix)
        except Exception as err:  # Galaxy expects stop_job not to raise
            log.warning("(%s) stopping workflow %s failed: %s", job_wrapper.get_id_tag(), name, err)

    def recover(self, job: Any, job_wrapper: Any) -> None:
        """Re-attach to the job's workflow after a Galaxy restart."""
        name = job.get_job_runner_external_id()
        if name is None:
            # Submitted maybe, external id never saved: queue again; the same name adopts it.
            self.put(job_wrapper)
            return
        ajs = ArgoJobState(
            job_wrapper=job_wrapper,
            job_destination=job_wrapper.job_destination,
            files_dir=job_wrapper.working_directory,
            job_id=name,
        )
        try:
            ajs.settings = self.settings_for(job_wrapper)
            ajs.connection = self.connections.get(ajs.settings)
        except GalaxyArgoError as err:
            ajs.fail_message = f"cannot recover the job: its Argo destination is misconfigured: {err}"
            ajs.stop_job = False
            self.mark_as_failed(ajs)
            return
        ajs.plan = JobPlan.load(job_wrapper.working_directory)
        ajs.running = job.state in (model.Job.states.RUNNING, model.Job.states.STOPPED)
        ajs.old_state = model.Job.states.RUNNING if ajs.running else model.Job.states.QUEUED
        log.info("(%s) recovered workflow %s", job_wrapper.get_id_tag(), name)
        self.monitor_queue.put(ajs)

    def shutdown(self) -> None:
        """Stop threads and close clients; workflows keep running for `recover`."""
        super().shutdown()
        self.connections.close()
