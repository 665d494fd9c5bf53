"""The ``galaxy-argo`` command: compile, templates, the embedded stack, reference data, doctor.

Every subcommand prints a one-line error naming the cause and exits 2 on bad input, never a
traceback: errors from galaxy-argo are `GalaxyArgoError`s and carry a message meant for people.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from galaxy_argo.core import __version__
from galaxy_argo.core.errors import GalaxyArgoError

__all__ = ["ProgressBar", "main"]


def _params_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Destination params from ``--job-config``/``--environment``, ``--destination`` and ``-p``."""
    from galaxy_argo.core.yamlio import load_yaml

    params: dict[str, object] = {}
    if getattr(args, "job_config", None):
        params.update(_environment_params(Path(args.job_config), args.environment))
    if args.destination:
        loaded = load_yaml(Path(args.destination).read_text())
        if not isinstance(loaded, dict):
            raise GalaxyArgoError(f"{args.destination}: expected a mapping of destination params")
        params.update(loaded.get("params", loaded) if isinstance(loaded.get("params"), dict) else loaded)
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise GalaxyArgoError(f"--param {item!r}: expected NAME=VALUE")
        params[key.strip()] = value
    return params


def _environment_params(job_config: Path, environment: str | None) -> dict[str, object]:
    from galaxy_argo.cli.doctor import destinations_in_job_config
    from galaxy_argo.core.yamlio import load_yaml

    loaded = load_yaml(job_config.read_text())
    ours = destinations_in_job_config(loaded if isinstance(loaded, dict) else {})
    if not ours:
        raise GalaxyArgoError(f"{job_config}: no environment runs on a runner loading ArgoJobRunner")
    if environment is None:
        if len(ours) > 1:
            raise GalaxyArgoError(f"{job_config}: choose one with --environment: {', '.join(sorted(ours))}")
        environment = next(iter(ours))
    if environment not in ours:
        raise GalaxyArgoError(
            f"{job_config}: environment {environment!r} does not run on Argo; those that do: "
            + ", ".join(sorted(ours))
        )
    return dict(ours[environment])


def _settings_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from galaxy_argo.core.settings import ArgoSettings

    return ArgoSettings.from_params(_params_from_args(args))


def _cmd_compile(args: argparse.Namespace) -> int:
    from galaxy_argo.core.compile import compile_job
    from galaxy_argo.core.spec import JobSpec
    from galaxy_argo.core.yamlio import dump_yaml

    spec = JobSpec.from_json(Path(args.jobspec).read_text())
    text = dump_yaml(compile_job(spec, _settings_from_args(args)).to_dict())
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_templates_render(args: argparse.Namespace) -> int:
    from galaxy_argo.core.templates import render_bundle, render_templates

    settings = _settings_from_args(args)
    for path in render_templates(Path(args.directory), settings):
        print(path)
    if args.bundle:
        print(render_bundle(Path(args.bundle), settings))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from galaxy_argo.cli.doctor import run_checks

    failed = False
    for check in run_checks(
        _params_from_args(args), probe=not args.no_probe, probe_timeout=args.probe_timeout
    ):
        print(check.line(), flush=True)
        failed = failed or check.failed
    print("doctor: " + ("problems found; fix the lines marked FAIL" if failed else "all checks passed"))
    return 1 if failed else 0


def _cmd_params(args: argparse.Namespace) -> int:
    from galaxy_argo.core.settings import params_table_markdown

    sys.stdout.write(params_table_markdown())
    return 0


def _cmd_schemas_refresh(args: argparse.Namespace) -> int:
    from galaxy_argo.core.argo_schema import extract_crd_schemas

    out = Path(__file__).resolve().parents[1] / "core" / "schemas"
    for path in extract_crd_schemas(Path(args.crds), out):
        print(path)
    return 0


def _stack(args: argparse.Namespace, state_dir: Path):  # type: ignore[no-untyped-def]
    from galaxy_argo.local.stack import EmbeddedStack

    return EmbeddedStack(
        state_dir,
        port=args.port,
        max_pods=args.max_pods,
        extra_repositories=_repositories(args.artifact_repositories or []),
    )


def _repositories(files: list[str]) -> dict[str, dict[str, dict[str, object]]]:
    """``artifact-repositories`` ConfigMaps (YAML files) -> name -> key -> repository document."""
    from galaxy_argo.core.yamlio import load_yaml

    out: dict[str, dict[str, dict[str, object]]] = {}
    for file in files:
        config_map = load_yaml(Path(file).read_text())
        if not isinstance(config_map, dict) or config_map.get("kind") != "ConfigMap":
            raise GalaxyArgoError(f"{file}: expected a ConfigMap of artifact repositories")
        entries = {key: load_yaml(value) or {} for key, value in (config_map.get("data") or {}).items()}
        out[config_map["metadata"]["name"]] = entries
    return out


def _cmd_local_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    stack = _stack(args, Path(args.state_dir)).start()
    info = stack.info()
    print(f"Argo Server API: {info.argo_server_url}  (namespace {info.namespace})")
    print(f"S3: {info.s3_endpoint_url}  bucket {info.bucket}")
    print(f"token and S3 keys: {Path(args.state_dir) / 'server.json'}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        done.wait()
    finally:
        stack.stop()
    return 0


def _cmd_local_run(args: argparse.Namespace) -> int:
    import tempfile

    from galaxy_argo.local.run import run_workflow_file

    state = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="galaxy-argo-local-"))
    with _stack(args, state) as stack:
        phase = run_workflow_file(
            stack.info(), Path(args.workflow), [Path(t) for t in args.template or []], timeout=args.timeout
        )
    return 0 if phase == "Succeeded" else 1


def _cmd_dev_up(args: argparse.Namespace) -> int:
    import signal
    import threading

    from galaxy_argo.dev.environment import DEMO_TOOLS, GALAXY_STORE_BUCKET, DevEnvironment, ObjectStoreKind

    tool_dirs = [DEMO_TOOLS, *(Path(d).resolve() for d in args.tool_dir or [])]
    for directory in tool_dirs:
        if not directory.is_dir():
            raise GalaxyArgoError(f"--tool-dir {directory}: not a directory")
    print("starting SeaweedFS, the embedded Argo engine and Galaxy (about 30 s) ...", flush=True)
    object_store = ObjectStoreKind(args.object_store)
    env = DevEnvironment(
        Path(args.work_dir).resolve(), tool_dirs=tool_dirs, port=args.port, object_store=object_store
    ).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        stack, galaxy, _ = env.running()
        info = stack.info()
        print(f"Galaxy:      {galaxy.url}  (started in {galaxy.startup_seconds:.0f} s)")
        print(f"API key:     {env.api_key}  (user {galaxy.admin_email}, an admin)")
        print(f"Argo API:    {info.argo_server_url}  namespace {info.namespace}")
        print(f"credentials: {info.state_dir}/server.json")
        print(f"S3:          {info.s3_endpoint_url}  bucket {info.bucket}")
        if object_store is not ObjectStoreKind.DISK:
            print(f"datasets:    Galaxy's boto3 object store, bucket {GALAXY_STORE_BUCKET} on the same S3")
            print("             jobs read and write it in place (object_store: direct); argo_staged stages")
        if object_store is ObjectStoreKind.MIXED:
            print("             a distributed store: backend s3 (default) and disk (a history may prefer it)")
        print(f"Galaxy log:  {galaxy.log_path}")
        print(f"pod logs:    {info.state_dir}/pods/")
        print(f"tools:       {', '.join(str(d) for d in tool_dirs)} (all run on the Argo destination)")
        print(
            "test a tool: galaxy-tool-test -u URL -k KEY -t TOOL_ID --test-data DIR/test-data "
            "--with-reference-data"
        )
        print("Ctrl-C stops everything.", flush=True)
        done.wait()
    finally:
        env.stop()
    return 0


def _cmd_reference_push(args: argparse.Namespace) -> int:
    from galaxy_argo.clients.connections import resolve_embedded, s3_client
    from galaxy_argo.clients.staging import Stager
    from galaxy_argo.core.settings import parse_key_prefix

    try:
        prefix = parse_key_prefix(args.prefix)
    except ValueError as err:
        raise GalaxyArgoError(f"key prefix {args.prefix!r}: expected {err}") from None
    settings = resolve_embedded(_settings_from_args(args))
    stager = Stager(s3_client(settings), settings.bucket, settings.key_prefix, progress=ProgressBar)
    uploads = stager.push_directory(Path(args.directory), prefix)
    sent = [u for u in uploads if u.uploaded]
    print(
        f"s3://{settings.bucket}/{prefix}/: {len(sent)} file(s) uploaded "
        f"({sum(u.size for u in sent)} bytes), {len(uploads) - len(sent)} already there"
    )
    return 0


class ProgressBar:
    """A staging `Progress` drawn as a tqdm bar on stderr, only when stderr is a terminal."""

    def __init__(self, what: str, total: int, file: TextIO | None = None) -> None:
        """One bar per transfer, removed when it ends."""
        from tqdm import tqdm

        self.bar = tqdm(
            total=total or None,
            desc=what if len(what) <= 60 else "..." + what[-57:],
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            leave=False,
            disable=None if file is None else False,
            file=file or sys.stderr,
        )

    def __call__(self, amount: int) -> None:
        """``amount`` more bytes moved."""
        self.bar.update(amount)

    def close(self) -> None:
        """The transfer ended."""
        self.bar.close()


def _add_settings_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--destination",
        metavar="FILE",
        help="YAML file of destination params (a mapping, or an environment with a `params` mapping)",
    )
    parser.add_argument(
        "-p", "--param", action="append", metavar="NAME=VALUE", help="a destination param (repeatable)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate from `main` so the README and tests can read its help."""
    parser = argparse.ArgumentParser(prog="galaxy-argo", description="Run Galaxy jobs on Argo Workflows.")
    parser.add_argument("--version", action="version", version=f"galaxy-argo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a job spec (JSON) into an Argo Workflow (YAML)")
    p.add_argument("jobspec", help="job spec JSON file")
    p.add_argument("-o", "--output", help="write the YAML here instead of stdout")
    _add_settings_args(p)
    p.set_defaults(func=_cmd_compile)

    templates = sub.add_parser("templates", help="the reusable WorkflowTemplates")
    tsub = templates.add_subparsers(dest="templates_command", required=True)
    p = tsub.add_parser("render", help="write the WorkflowTemplates as YAML into a directory")
    p.add_argument("directory")
    p.add_argument("--bundle", metavar="FILE", help="also write them all into one file (manifests/base)")
    _add_settings_args(p)
    p.set_defaults(func=_cmd_templates_render)

    p = sub.add_parser(
        "doctor",
        help="check a destination: Argo Server, token, permissions, bucket, images, artifact repository",
    )
    _add_settings_args(p)
    p.add_argument("--job-config", metavar="FILE", help="Galaxy's job_conf.yml: take the params from it")
    p.add_argument("--environment", metavar="ID", help="which Argo environment of --job-config")
    p.add_argument("--no-probe", action="store_true", help="do not run the probe workflow")
    p.add_argument(
        "--probe-timeout", type=float, default=120.0, metavar="S", help="seconds the probe may take"
    )
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("params", help="print the destination params table (Markdown)")
    p.set_defaults(func=_cmd_params)

    local = sub.add_parser("local", help="the embedded Argo-compatible engine with SeaweedFS")
    lsub = local.add_subparsers(dest="local_command", required=True)
    for name, func, text in (
        ("serve", _cmd_local_serve, "serve the Argo REST API on 127.0.0.1 until interrupted"),
        ("run", _cmd_local_run, "run one workflow on a temporary engine, print its progress and final phase"),
    ):
        p = lsub.add_parser(name, help=text)
        p.add_argument("--port", type=int, default=0 if name == "run" else 2746)
        p.add_argument("--max-pods", type=int, default=4, help="pods running at once")
        p.add_argument(
            "--artifact-repositories",
            action="append",
            metavar="CONFIGMAP.yaml",
            help="extra artifact-repositories ConfigMap (repeatable)",
        )
        if name == "serve":
            p.add_argument("--state-dir", default=".galaxy-argo/local", help="where state persists")
        else:
            p.add_argument("--state-dir", default="", help="keep state here (default: a temporary directory)")
            p.add_argument(
                "--template",
                action="append",
                metavar="FILE",
                help="WorkflowTemplate YAML to register first (repeatable)",
            )
            p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the workflow")
            p.add_argument("workflow", help="Workflow YAML")
        p.set_defaults(func=func)

    dev = sub.add_parser("dev", help="a real Galaxy whose tools run on the embedded engine")
    dsub = dev.add_subparsers(dest="dev_command", required=True)
    p = dsub.add_parser("up", help="start S3 + engine + Galaxy on 127.0.0.1, print URL and API key")
    p.add_argument("--tool-dir", action="append", metavar="DIR", help="more tools (repeatable)")
    p.add_argument("--port", type=int, default=0, help="Galaxy's port (default: a free one)")
    p.add_argument("--work-dir", default=".galaxy-argo/dev", help="Galaxy's and the stack's state")
    p.add_argument(
        "--object-store",
        choices=["disk", "s3", "mixed"],  # dev.environment.ObjectStoreKind, not imported until dev up runs
        default="disk",
        help="where Galaxy keeps datasets: its data directory, its boto3 object store on the stack's S3, "
        "or a distributed store of both",
    )
    p.set_defaults(func=_cmd_dev_up)

    reference = sub.add_parser("reference", help="reference data (.loc file paths) kept in the bucket")
    rsub = reference.add_subparsers(dest="reference_command", required=True)
    p = rsub.add_parser(
        "push", help="upload a directory below a key prefix (files there with the same sha256 are skipped)"
    )
    p.add_argument("directory", help="local directory, e.g. /data/genomes/hg38")
    p.add_argument("prefix", help="key prefix in the bucket, e.g. reference/genomes/hg38")
    _add_settings_args(p)
    p.set_defaults(func=_cmd_reference_push)

    schemas = sub.add_parser("schemas", help="Argo CRD schemas bundled for validation")
    ssub = schemas.add_subparsers(dest="schemas_command", required=True)
    p = ssub.add_parser("refresh", help="re-extract the bundled schemas from Argo's full CRDs")
    p.add_argument("crds", help="directory with argoproj.io_*.yaml CRDs")
    p.set_defaults(func=_cmd_schemas_refresh)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``galaxy-argo`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GalaxyArgoError as err:
        print(f"galaxy-argo: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"galaxy-argo: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 2

