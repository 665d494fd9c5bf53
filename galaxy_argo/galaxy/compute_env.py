"""`ArgoComputeEnvironment`: Galaxy writes the job's command line with pod paths, not host paths.

Galaxy asks a ``ComputeEnvironment`` where every input, output, config file and directory will be
when the tool runs (``galaxy/job_execution/compute_environment.py``); Pulsar answers with its
remote paths, and so do we, with the pod layout below. No string rewriting of command lines
happens anywhere: a path Galaxy did not ask about stays a host path, and staging refuses to
pretend otherwise.

Pod layout (all under the shared emptyDir at ``/galaxy``):

    /galaxy/job                 Galaxy's job directory (scripts, configs, working/, outputs/, metadata/)
    /galaxy/job/working         the tool's working directory (from_work_dir sources, discovered files)
    /galaxy/job/outputs/<name>  outputs, at their ``outputs_to_working_directory`` false-path basename
    /galaxy/tool                the tool's directory ($__tool_directory__)
    /galaxy/inputs/dataset_<uuid>.dat            input datasets
    /galaxy/inputs/dataset_<uuid>_files          their extra files
    /galaxy/inputs/metadata/<file>               their metadata files (e.g. BAM indexes)
    /galaxy/reference/<host path>                reference data from ``.loc`` files (``reference_data``)

`galaxy_argo.galaxy.plan` stages every input of the job at these same paths (the names come from
`input_pod_name`), whether or not the command line touches it: some rewrites happen lazily, only
if a template reads the value.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from galaxy.job_execution.compute_environment import ComputeEnvironment, dataset_path_to_extra_path

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "POD_INPUTS",
    "POD_JOB",
    "POD_REFERENCE",
    "POD_TOOL",
    "ArgoComputeEnvironment",
    "input_pod_name",
]

POD_JOB = "/galaxy/job"
POD_TOOL = "/galaxy/tool"
POD_INPUTS = "/galaxy/inputs"
POD_REFERENCE = "/galaxy/reference"
_POD_PATH_CHARS = re.compile(r"^[A-Za-z0-9._/+@=,-]+$")


def reference_root(path: str, reference_data: Mapping[str, str]) -> str | None:
    """The longest host directory of ``reference_data`` that ``path`` (normalised) is below."""
    roots = [root for root in reference_data if path == root or path.startswith(root + "/")]
    return max(roots, key=len) if roots else None


def input_pod_name(dataset: Any) -> str:
    """``dataset_<uuid>.dat``: unique per dataset.

    It ends in ``.dat`` because Galaxy's ``dataset_path_to_extra_path`` strips four characters.
    """
    inner = getattr(dataset, "dataset", dataset)
    ident = getattr(inner, "uuid", None) or getattr(inner, "id", None)
    return f"dataset_{str(ident).replace('-', '')}.dat"


class ArgoComputeEnvironment(ComputeEnvironment):
    """Answers Galaxy's path questions with pod paths."""

    def __init__(self, job_wrapper: Any, reference_data: Mapping[str, str] | None = None) -> None:
        """Wrap ``job_wrapper`` (a Galaxy ``JobWrapper``); ``reference_data`` as in `ArgoSettings`."""
        super().__init__()
        self.job_wrapper = job_wrapper
        self.reference_data = dict(reference_data or {})
        #: Normalised host paths of the reference data the tool's command reads.
        self.reference_paths: set[str] = set()
        #: Galaxy's own answers (host paths): output names come from its false paths.
        self.local = job_wrapper.default_compute_environment()

    # -- datasets -----------------------------------------------------------------------------

    def output_names(self) -> list[str]:
        """Basenames of the outputs, as Galaxy's default does."""
        return list(self.job_wrapper.job_io.get_output_basenames())

    def output_paths(self) -> Any:
        """Galaxy's DatasetPaths of the outputs (host paths; callers map them)."""
        return self.job_wrapper.job_io.get_output_fnames()

    def input_path_rewrite(self, dataset: Any) -> str:
        """``/galaxy/inputs/dataset_<uuid>.dat``."""
        return posixpath.join(POD_INPUTS, input_pod_name(dataset))

    def output_path_rewrite(self, dataset: Any) -> str:
        """``/galaxy/job/outputs/<basename of Galaxy's false path>``."""
        return posixpath.join(
            POD_JOB, "outputs", os.path.basename(str(self.local.output_path_rewrite(dataset)))
        )

    def input_extra_files_rewrite(self, dataset: Any) -> str:
        """``/galaxy/inputs/dataset_<uuid>_files``."""
        return dataset_path_to_extra_path(self.input_path_rewrite(dataset))

    def output_extra_files_rewrite(self, dataset: Any) -> str:
        """``/galaxy/job/outputs/dataset_<uuid>_files``."""
        return dataset_path_to_extra_path(self.output_path_rewrite(dataset))

    def input_metadata_rewrite(self, dataset: Any, metadata_value: Any) -> str | None:
        """``/galaxy/inputs/metadata/<basename>`` for metadata files (indexes) of inputs."""
        if not metadata_value or str(metadata_value) == "None":
            return None
        return posixpath.join(POD_INPUTS, "metadata", os.path.basename(str(metadata_value)))

    def unstructured_path_rewrite(self, parameter_value: Any) -> str | None:
        """A ``.loc`` path below a ``reference_data`` directory -> ``/galaxy/reference/<path>``.

        Galaxy asks for the ``path`` and ``len_path`` columns of data tables only, and only when
        the tool's template reads them, so what is recorded here is what the job uses; the plan
        loads it from the bucket. Other paths are left alone (``None``): a cluster that mounts
        CVMFS on its nodes sees them where Galaxy does.
        """
        text = str(parameter_value)
        if not text.startswith("/"):
            return None
        path = posixpath.normpath(text)
        if reference_root(path, self.reference_data) is None:
            return None
        if not _POD_PATH_CHARS.match(path):
            raise GalaxyArgoError(
                f"reference data path {text!r} has characters other than A-Z a-z 0-9 . _ / + @ = , -; "
                "rename it or leave its directory out of the destination's reference_data"
            )
        pod_path = POD_REFERENCE + path + ("/" if text.endswith("/") else "")
        self.reference_paths.add(path)
        return pod_path

    # -- directories --------------------------------------------------------------------------

    def working_directory(self) -> str:
        """The job directory (Galaxy's ``working_directory`` is the job dir, not ``working/``)."""
        return POD_JOB

    def config_directory(self) -> str:
        """Where ``<configfiles>`` are referenced."""
        return f"{POD_JOB}/configs"

    def env_config_directory(self) -> str:
        """Where Galaxy's ``tool_env_*`` files are (the job directory's root)."""
        return POD_JOB

    def sep(self) -> str:
        """Pods are POSIX."""
        return "/"

    def new_file_path(self) -> str:
        """Legacy ``$__new_file_path__``: the tool's working directory."""
        return f"{POD_JOB}/working"

    def version_path(self) -> str:
        """Where the version command writes."""
        return f"{POD_JOB}/outputs/COMMAND_VERSION"

    def tool_directory(self) -> str | None:
        """``$__tool_directory__``; ``None`` for tools without a directory."""
        return POD_TOOL if self.job_wrapper.tool.tool_dir is not None else None

    def home_directory(self) -> str | None:
        """Same rules as Galaxy's, with the pod's job directory."""
        return self._target(self.job_wrapper.home_target)

    def tmp_directory(self) -> str | None:
        """Same rules as Galaxy's, with the pod's job directory."""
        return self._target(self.job_wrapper.tmp_target)

    def _target(self, target: str | None) -> str | None:
        # Mirrors MinimalJobWrapper._target_to_directory with pod paths.
        tmp_dir = self.job_wrapper.get_destination_configuration("tmp_dir", None)
        if target is None or (target == "job_tmp_if_explicit" and tmp_dir is None):
            return None
        if target in ("job_tmp", "job_tmp_if_explicit"):
            return "$_GALAXY_JOB_TMP_DIR"
        if target == "job_home":
            return "$_GALAXY_JOB_HOME_DIR"
        if target == "pwd":
            return f"{POD_JOB}/working"
        if target == "shared_home":
            return self.job_wrapper.get_destination_configuration("shared_home_dir", None)
        raise ValueError(f"unknown home/tmp target {target!r}")

    def galaxy_url(self) -> str | None:
        """Galaxy's URL as the pod reaches it."""
        return self.job_wrapper.get_destination_configuration("galaxy_infrastructure_url")

    def get_file_sources_dict(self) -> Any:
        """Galaxy's file sources, unchanged."""
        return self.job_wrapper.job_io.file_sources_dict
