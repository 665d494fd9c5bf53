"""Galaxy's metadata step in the job's pod, and what ``object_store: direct`` asks of it.

With ``metadata: remote`` Galaxy's ``set_metadata`` runs in the pod after the tool, on pod paths.
With ``metadata_strategy: extended`` it also writes every output (fixed, discovered, extra and
metadata files) into Galaxy's object store itself, using the object store config Galaxy
serializes into the job directory: the only way outputs reach Galaxy's store without passing
through the Galaxy host, so ``object_store: direct`` needs it (DESIGN.md, "Data in place").
"""

from __future__ import annotations

import json
import logging
import os
from copy import copy
from pathlib import Path
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.settings import ArgoSettings, MetadataMode, ObjectStoreMode
from galaxy_argo.galaxy.compute_env import POD_JOB
from galaxy_argo.galaxy.object_store import pod_object_store_config
from galaxy_argo.galaxy.plan import DirectStore

__all__ = ["direct_store", "metadata_command_for_pod"]

log = logging.getLogger(__name__)


def direct_store(job_wrapper: Any, settings: ArgoSettings, app: Any) -> DirectStore | None:
    """``object_store: direct`` for this job, or ``None`` (staged).

    Outputs are written in place only through Galaxy's extended metadata; a tool Galaxy sets
    metadata for otherwise (interactive tools, the set-metadata tool) has its outputs staged.
    A destination that asks for direct mode without extended metadata is a configuration error.
    """
    if settings.object_store is not ObjectStoreMode.DIRECT:
        return None
    extended = bool(job_wrapper.external_output_metadata.extended)
    if not extended:
        strategy = str(job_wrapper.metadata_strategy or app.config.metadata_strategy)
        if "extended" not in strategy:
            raise GalaxyArgoError(
                f"object_store: direct needs metadata_strategy: extended (this destination has {strategy!r})"
            )
        log.info(
            "(%s) outputs are staged: Galaxy sets this tool's metadata without extended metadata",
            job_wrapper.get_id_tag(),
        )
    outputs = extended and bool(job_wrapper.requires_setting_metadata)
    return DirectStore(app.object_store, settings.object_store_endpoint, outputs)


def metadata_command_for_pod(
    job_wrapper: Any, settings: ArgoSettings, work_dir_outputs: dict[str, str]
) -> str | None:
    """Set up remote metadata (pod paths) before the job directory is uploaded.

    ``work_dir_outputs``: output host path -> pod path of its ``from_work_dir`` source, which
    ``set_metadata`` reads in place of the output. With extended metadata Galaxy also serializes
    its object store config into the job directory; the pod's copy is rewritten here (no
    credentials, the endpoint pods reach, a cache on the pod's volume) before anything leaves
    the host.
    """
    if settings.metadata is not MetadataMode.REMOTE or not job_wrapper.requires_setting_metadata:
        return None
    pod_outputs = []
    for dataset_path in job_wrapper.job_io.get_output_fnames():
        pod_path = copy(dataset_path)
        pod_path.false_path = work_dir_outputs.get(str(dataset_path)) or (
            f"{POD_JOB}/outputs/{os.path.basename(str(dataset_path))}"
        )
        pod_outputs.append(pod_path)
    command = job_wrapper.setup_external_metadata(
        tmp_dir=job_wrapper.working_directory,
        output_fnames=pod_outputs,
        set_extension=False,
        use_bin=job_wrapper.use_metadata_binary,
        compute_version_path=f"{POD_JOB}/outputs/COMMAND_VERSION",
        kwds={"overwrite": False},
    )
    conf = Path(job_wrapper.working_directory) / "metadata" / "object_store_conf.json"
    if conf.exists():
        pod_conf = pod_object_store_config(json.loads(conf.read_text()), settings.object_store_endpoint)
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(json.dumps(pod_conf))
        os.replace(tmp, conf)
    return str(command) if command else None
