"""Run the pod's POSIX sh scripts (`galaxy_argo.core.stage_scripts`) for real, with real files.

The scripts hard-code absolute pod paths below `POD_ROOT` (``/galaxy``) and `CONTROL_DIR`, and they
write ``/dev/termination-log``. To run them unchanged without root and without touching the host,
each run happens in a bubblewrap sandbox: a tmpfs root with the host's ``/usr`` and ``/etc`` bound
read-only, and the test's ``tmp_path`` directory bound at ``/galaxy`` (the pod's shared emptyDir).
A host file is bound at ``/dev/termination-log`` so the Kubernetes termination message is checked
too. (bwrap cannot create a mount point under a read-only bind of ``/``, hence the tmpfs root.)

The same scripts run in the busybox stage image and in arbitrary tool images, so every test runs
twice: with busybox (``/bin`` replaced by a directory of busybox applet links, so ``/bin/sh`` and
every tool on ``PATH`` is busybox, as in the busybox image) and with the host's ``/bin/sh`` and
GNU tools (dash, coreutils, findutils, mawk). A missing bwrap or busybox fails, never skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from galaxy_argo.core.compile import step_node
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import CONTROL_DIR, POD_ROOT
from galaxy_argo.core.stage_scripts import (
    DISCARD_LIST,
    INPUTS_CHECKLIST,
    MANIFEST_VERSION,
    OUTPUTS_LIST,
    OUTPUTS_MANIFEST,
    STAGE_IN,
    STAGE_OUT,
    STEP_WRAPPER,
    step_exit_file,
)

BUSYBOX = "/usr/bin/busybox"
#: Top-level host directories the sandbox needs (bound read-only, or re-created as symlinks).
HOST_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc")
HOST_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
OUT = f"{POD_ROOT}/job/outputs"
WORKING = f"{POD_ROOT}/job/working"
FIVE_GIB = 5 * 1024**3
#: Content of a good input.
GOOD = b"the right content\n"
#: File names that the scripts must carry through unchanged (JSON-escaped in the manifest).
ODD_NAMES = {
    "space": "with some spaces.txt",
    "double-quote": 'say "hi".txt',
    "backslash": "back\\slash\\n.txt",
    "tab": "tab\there.txt",
    "control": "bell\x07esc\x1b.txt",
    "utf8": "données-é.txt",
    "all": 'a b"c\\d\te.txt',
}


@dataclass(frozen=True)
class Shell:
    """How to start ``sh -c``: the argv prefix, and busybox applet links to bind over ``/bin``."""

    argv: tuple[str, ...]
    applets: Path | None = None


def _bwrap() -> str:
    found = shutil.which("bwrap")
    if found is None:
        pytest.fail("bubblewrap (bwrap) is required to run the pod scripts; install the bubblewrap package")
    return found


def run_in_pod(
    shell: Shell,
    script: str,
    *args: str,
    galaxy_dir: Path,
    termination_log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``<shell> -c script args...`` in a sandbox where ``galaxy_dir`` is ``/galaxy``."""
    cmd = [_bwrap(), "--die-with-parent", "--tmpfs", "/"]
    for top in HOST_DIRS:
        if top == "/bin" and shell.applets is not None:
            cmd += ["--ro-bind", str(shell.applets), "/bin"]
        elif os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    cmd += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    if termination_log is not None:
        termination_log.touch()
        cmd += ["--bind", str(termination_log), "/dev/termination-log"]
    cmd += ["--bind", str(galaxy_dir), POD_ROOT, "--chdir", "/", *shell.argv, "-c", script, *args]
    path = "/bin" if shell.applets is not None else HOST_PATH
    return subprocess.run(
        cmd, env={"PATH": path}, capture_output=True, text=True, encoding="utf-8", check=False, timeout=240
    )


@pytest.fixture(scope="session")
def busybox_applets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a link to busybox for each of its applets, like a busybox image's /bin."""
    if not os.access(BUSYBOX, os.X_OK):
        pytest.fail(f"{BUSYBOX} is required (the stage image runs busybox); install the busybox package")
    listed = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    needed = {"sh", "sha256sum", "stat", "cut", "tr", "find", "sort", "awk", "mkdir", "cat", "mv", "grep"}
    needed |= {"dirname", "wc", "printf", "echo", "kill", "pwd"}
    if not needed <= set(listed):
        pytest.fail(f"{BUSYBOX} lacks applets {sorted(needed - set(listed))}")
    applets = tmp_path_factory.mktemp("busybox") / "bin"
    applets.mkdir()
    for name in listed:
        (applets / name).symlink_to(BUSYBOX)
    return applets


@pytest.fixture(params=["busybox", "host-sh"])
def shell(request: pytest.FixtureRequest, busybox_applets: Path) -> Shell:
    if request.param == "busybox":
        return Shell((BUSYBOX, "sh"), busybox_applets)
    return Shell(("/bin/sh",))


@dataclass
class Pod:
    """The pod's shared ``/galaxy`` volume (a host directory) and the shell its containers run."""

    shell: Shell
    root: Path
    termination_log: Path

    def host(self, pod_path: str) -> Path:
        """Host path of ``pod_path`` (absolute, below /galaxy)."""
        return self.root / PurePosixPath(pod_path).relative_to(POD_ROOT)

    def write(self, pod_path: str, data: bytes | str) -> Path:
        path = self.host(pod_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        return path

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        self.termination_log.write_text("")
        return run_in_pod(
            self.shell, script, *args, galaxy_dir=self.root, termination_log=self.termination_log
        )

    def termination_message(self) -> str:
        return self.termination_log.read_text()

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.host(OUTPUTS_MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture
def pod(shell: Shell, tmp_path: Path) -> Pod:
    root = tmp_path / "galaxy"
    root.mkdir()
    return Pod(shell, root, tmp_path / "termination-log")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checklist(*entries: tuple[str, int, str]) -> str:
    """``inputs.sha256`` content from ``(sha256, size, path)`` entries."""
    return "".join(f"{want} {size} {path}\n" for want, size, path in entries)


def outputs_list(*entries: tuple[str, str, str]) -> str:
    """``outputs.list`` content from ``(name, kind, path)`` entries."""
    return "".join(f"{name} {kind} {path}\n" for name, kind, path in entries)


def wrapper_argv(step: str, command_line: str, working_directory: str) -> list[str]:
    """The wrapper's arguments after ``sh -c STEP_WRAPPER``, exactly as the compiler emits them."""
    node = step_node(step, "tool:1", command_line, working_directory, {}, None, ArgoSettings(), [])
    assert node.command[:3] == ["/bin/sh", "-c", STEP_WRAPPER]
    return [*node.command[3:], *node.args]


# -- stage-in ----------------------------------------------------------------------------------------


def test_stage_in_accepts_good_inputs_and_creates_output_dirs(pod: Pod) -> None:
    inputs = {f"{POD_ROOT}/inputs/a.txt": b"hello\n", f"{POD_ROOT}/inputs/sub dir/empty": b""}
    for path, data in inputs.items():
        pod.write(path, data)
    pod.write(INPUTS_CHECKLIST, checklist(*((sha256(d), len(d), p) for p, d in inputs.items())))
    pod.write(
        OUTPUTS_LIST,
        outputs_list(("out1", "file", f"{OUT}/deep/er/out1.dat"), ("many", "dir", f"{OUT}/many/x")) + "\n",
    )

    result = pod.run(STAGE_IN)

    assert result.returncode == 0, result.stderr
    assert "2 input(s) verified" in result.stdout
    assert pod.host(f"{OUT}/deep/er").is_dir()
    assert not pod.host(f"{OUT}/deep/er/out1.dat").exists()
    assert pod.host(f"{OUT}/many/x").is_dir()
    assert pod.termination_message() == ""


def test_stage_in_without_control_files_passes(pod: Pod) -> None:
    result = pod.run(STAGE_IN)

    assert result.returncode == 0, result.stderr
    assert "0 input(s) verified" in result.stdout
    assert pod.host(CONTROL_DIR).is_dir()


@pytest.mark.parametrize(
    ("on_disk", "reason"),
    [
        (None, "missing input"),
        (GOOD + b"x", f"has {len(GOOD) + 1} bytes, expected {len(GOOD)}"),
        (GOOD.upper(), f"has sha256 {sha256(GOOD.upper())}, expected {sha256(GOOD)}"),
    ],
    ids=["missing", "wrong-size", "wrong-sha256"],
)
def test_stage_in_rejects_a_bad_input(pod: Pod, on_disk: bytes | None, reason: str) -> None:
    path = f"{POD_ROOT}/inputs/dataset_1.dat"
    if on_disk is not None:
        pod.write(path, on_disk)
    pod.write(INPUTS_CHECKLIST, checklist((sha256(GOOD), len(GOOD), path)))

    result = pod.run(STAGE_IN)

    assert result.returncode == 1
    assert path in result.stderr
    assert reason in result.stderr
    assert path in pod.termination_message()
    assert reason in pod.termination_message()


def test_stage_in_reports_every_bad_input_in_one_message(pod: Pod) -> None:
    good, missing, short, corrupt = (
        f"{POD_ROOT}/inputs/{n}" for n in ("good", "missing", "short", "corrupt")
    )
    pod.write(good, GOOD)
    pod.write(short, GOOD[:-1])
    pod.write(corrupt, GOOD.upper())
    pod.write(
        INPUTS_CHECKLIST, checklist(*((sha256(GOOD), len(GOOD), p) for p in (missing, good, short, corrupt)))
    )

    result = pod.run(STAGE_IN)

    assert result.returncode == 1
    message = [line for line in result.stderr.splitlines() if line.startswith("galaxy-argo stage-in:")]
    assert len(message) == 1, result.stderr
    for path in (missing, short, corrupt):
        assert path in message[0]
        assert path in pod.termination_message()
    assert f"{good} " not in message[0]


@pytest.mark.parametrize("file_name", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_stage_in_accepts_odd_file_names(pod: Pod, file_name: str) -> None:
    path = f"{POD_ROOT}/inputs/{file_name}"
    pod.write(path, GOOD)
    pod.write(INPUTS_CHECKLIST, checklist((sha256(GOOD), len(GOOD), path)))
    pod.write(OUTPUTS_LIST, outputs_list(("out", "file", f"{OUT}/{file_name}/out.txt")))

    result = pod.run(STAGE_IN)

    assert result.returncode == 0, result.stderr
    assert "1 input(s) verified" in result.stdout
    assert pod.host(f"{OUT}/{file_name}").is_dir()


# -- step wrapper ------------------------------------------------------------------------------------


def test_wrapper_argv_is_what_the_compiler_emits() -> None:
    assert wrapper_argv("run", "echo hi", WORKING) == ["run", "echo hi", WORKING]


@pytest.mark.parametrize("code", [0, 3])
def test_wrapper_records_the_exit_code_and_succeeds(pod: Pod, code: int) -> None:
    pod.host(WORKING).mkdir(parents=True)

    result = pod.run(STEP_WRAPPER, *wrapper_argv("run", f"exit {code}", WORKING))

    assert result.returncode == 0, result.stderr
    assert pod.host(step_exit_file("run")).read_text() == f"{code}\n"
    assert f"run exited with code {code}" in result.stderr


def test_wrapper_keeps_a_signal_exit_code(pod: Pod) -> None:
    pod.host(WORKING).mkdir(parents=True)

    result = pod.run(STEP_WRAPPER, *wrapper_argv("run", "kill -9 $$", WORKING))

    assert result.returncode == 137, result.stderr
    assert pod.host(step_exit_file("run")).read_text() == "137\n"


def test_wrapper_records_126_for_a_missing_working_directory(pod: Pod) -> None:
    result = pod.run(STEP_WRAPPER, *wrapper_argv("metadata", "exit 0", f"{POD_ROOT}/nowhere"))

    assert result.returncode == 0, result.stderr
    assert pod.host(step_exit_file("metadata")).read_text() == "126\n"
    assert f"cannot enter working directory {POD_ROOT}/nowhere" in result.stderr


def test_wrapper_runs_the_command_in_the_working_directory(pod: Pod) -> None:
    pod.host(WORKING).mkdir(parents=True)
    command = f"pwd > {OUT}/pwd.txt && printf '%s|' \"a b\" 'c\"d' > quoted.txt"
    pod.host(OUT).mkdir(parents=True)

    result = pod.run(STEP_WRAPPER, *wrapper_argv("run", command, WORKING))

    assert result.returncode == 0, result.stderr
    assert pod.host(f"{OUT}/pwd.txt").read_text() == f"{WORKING}\n"
    assert pod.host(f"{WORKING}/quoted.txt").read_text() == 'a b|c"d|'
    assert pod.host(step_exit_file("run")).read_text() == "0\n"


# -- stage-out ---------------------------------------------------------------------------------------


def file_entry(name: str, path: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "path": path, "size": len(data), "sha256": sha256(data)}


def test_stage_out_manifest_has_size_and_sha256_of_each_file(pod: Pod) -> None:
    outputs = {"out1": (f"{OUT}/out1.dat", b"1\t2\n3\t4\n"), "empty": (f"{OUT}/sub/empty.txt", b"")}
    for path, data in outputs.values():
        pod.write(path, data)
    pod.write(OUTPUTS_LIST, outputs_list(*((name, "file", path) for name, (path, _) in outputs.items())))
    pod.write(step_exit_file("run"), "0\n")
    pod.write(step_exit_file("metadata"), "0\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    assert pod.manifest() == {
        "version": MANIFEST_VERSION,
        "exit_code": 0,
        "metadata_exit_code": 0,
        "files": [file_entry(name, path, data) for name, (path, data) in outputs.items()],
        "missing": [],
    }
    assert "2 file(s), 0 missing" in result.stdout
    assert pod.termination_message() == ""


def test_stage_out_lists_missing_outputs(pod: Pod) -> None:
    pod.write(f"{OUT}/here.dat", b"here")
    pod.write(
        OUTPUTS_LIST,
        outputs_list(
            ("gone", "file", f"{OUT}/gone.dat"),
            ("here", "file", f"{OUT}/here.dat"),
            ("nodir", "dir", f"{OUT}/nodir"),
        ),
    )
    pod.write(step_exit_file("run"), "0\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    manifest = pod.manifest()
    assert manifest["files"] == [file_entry("here", f"{OUT}/here.dat", b"here")]
    assert manifest["missing"] == ["gone", "nodir"]
    assert "1 file(s), 2 missing" in result.stdout


def test_stage_out_lists_every_file_below_a_dir_output(pod: Pod) -> None:
    files = {"b.txt": b"b", "a/z.txt": b"z" * 1000, "a/b/c.txt": b"", ".hidden": b"h"}
    for rel, data in files.items():
        pod.write(f"{OUT}/coll/{rel}", data)
    pod.host(f"{OUT}/coll/empty-subdir").mkdir()
    pod.host(f"{OUT}/nothing").mkdir(parents=True)
    pod.write(
        OUTPUTS_LIST, outputs_list(("coll", "dir", f"{OUT}/coll"), ("nothing", "dir", f"{OUT}/nothing"))
    )
    pod.write(step_exit_file("run"), "0\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    manifest = pod.manifest()
    assert sorted(manifest["files"], key=lambda f: f["name"]) == [
        file_entry(f"coll/{rel}", f"{OUT}/coll/{rel}", files[rel]) for rel in sorted(files)
    ]
    assert manifest["missing"] == []


@pytest.mark.parametrize("file_name", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_stage_out_names_round_trip_through_json(pod: Pod, file_name: str) -> None:
    data = file_name.encode()
    pod.write(f"{OUT}/single/{file_name}", data)
    pod.write(f"{OUT}/coll/sub/{file_name}", data)
    pod.write(
        OUTPUTS_LIST,
        outputs_list(("single", "file", f"{OUT}/single/{file_name}"), ("coll", "dir", f"{OUT}/coll")),
    )
    pod.write(step_exit_file("run"), "0\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    assert pod.manifest()["files"] == [
        file_entry("single", f"{OUT}/single/{file_name}", data),
        file_entry(f"coll/sub/{file_name}", f"{OUT}/coll/sub/{file_name}", data),
    ]


@cache
def sha256_of_zeros(size: int) -> str:
    digest = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(size // len(block)):
        digest.update(block)
    digest.update(bytes(size % len(block)))
    return digest.hexdigest()


@pytest.mark.slow  # hashes 5 GiB twice: about a minute
def test_stage_out_reports_a_large_size_exactly(pod: Pod) -> None:
    path = f"{OUT}/big.bin"
    pod.write(path, b"")
    os.truncate(pod.host(path), FIVE_GIB)  # sparse: cheap to create, 5 GiB to hash
    pod.write(OUTPUTS_LIST, outputs_list(("big", "file", path)))
    pod.write(step_exit_file("run"), "0\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    raw = pod.host(OUTPUTS_MANIFEST).read_text()
    assert f'"size": {FIVE_GIB},' in raw
    assert pod.manifest()["files"] == [
        {"name": "big", "path": path, "size": FIVE_GIB, "sha256": sha256_of_zeros(FIVE_GIB)}
    ]


@pytest.mark.parametrize(
    ("run_exit", "metadata_exit", "status", "reason"),
    [
        ("0", None, 0, None),
        ("0", "0", 0, None),
        ("3", None, 3, "tool exited with code 3"),
        ("3", "2", 3, "tool exited with code 3"),
        ("64", "0", 1, "tool exited with code 64"),
        ("137", None, 137, "tool exited with code 137"),
        ("0", "2", 1, "metadata step exited with code 2"),
        (None, None, 1, "the tool step recorded no exit code"),
        (None, "0", 1, "the tool step recorded no exit code"),
    ],
)
def test_stage_out_exit_status(
    pod: Pod, run_exit: str | None, metadata_exit: str | None, status: int, reason: str | None
) -> None:
    pod.write(f"{OUT}/partial.txt", b"partial")
    pod.write(OUTPUTS_LIST, outputs_list(("partial", "file", f"{OUT}/partial.txt")))
    for step, code in (("run", run_exit), ("metadata", metadata_exit)):
        if code is not None:
            pod.write(step_exit_file(step), f"{code}\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == status, result.stderr
    manifest = pod.manifest()
    assert manifest["exit_code"] == (None if run_exit is None else int(run_exit))
    assert manifest["metadata_exit_code"] == (None if metadata_exit is None else int(metadata_exit))
    assert manifest["files"] == [file_entry("partial", f"{OUT}/partial.txt", b"partial")]
    if reason is None:
        assert "galaxy-argo stage-out:" not in result.stderr
        assert pod.termination_message() == ""
    else:
        assert f"galaxy-argo stage-out: {reason}" in result.stderr
        assert pod.termination_message() == reason


def test_stage_out_without_outputs_list(pod: Pod) -> None:
    pod.write(step_exit_file("run"), "0\n")

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    assert pod.manifest() == {
        "version": MANIFEST_VERSION,
        "exit_code": 0,
        "metadata_exit_code": None,
        "files": [],
        "missing": [],
    }


# -- the three containers in sequence ----------------------------------------------------------------


def test_pod_returns_partial_outputs_of_a_failed_tool(pod: Pod) -> None:
    pod.write(f"{POD_ROOT}/inputs/in.txt", GOOD)
    pod.write(INPUTS_CHECKLIST, checklist((sha256(GOOD), len(GOOD), f"{POD_ROOT}/inputs/in.txt")))
    pod.write(
        OUTPUTS_LIST,
        outputs_list(("out", "file", f"{OUT}/res/out.txt"), ("never", "file", f"{OUT}/never.txt")),
    )
    pod.host(WORKING).mkdir(parents=True)
    command = f"cat {POD_ROOT}/inputs/in.txt > {OUT}/res/out.txt; echo oops >&2; exit 3"

    stage_in = pod.run(STAGE_IN)
    run = pod.run(STEP_WRAPPER, *wrapper_argv("run", command, WORKING))
    stage_out = pod.run(STAGE_OUT)

    assert stage_in.returncode == 0, stage_in.stderr
    assert run.returncode == 0, run.stderr
    assert stage_out.returncode == 3, stage_out.stderr
    assert pod.manifest() == {
        "version": MANIFEST_VERSION,
        "exit_code": 3,
        "metadata_exit_code": None,
        "files": [file_entry("out", f"{OUT}/res/out.txt", GOOD)],
        "missing": ["never"],
    }
    assert pod.termination_message() == "tool exited with code 3"


# -- object_store: direct ----------------------------------------------------------------------------


def test_stage_in_checks_only_the_size_of_an_input_without_a_digest(pod: Pod) -> None:
    """A dataset read in place from Galaxy's store whose sha256 Galaxy does not know: ``-``."""
    good, short = f"{POD_ROOT}/inputs/good.dat", f"{POD_ROOT}/inputs/short.dat"
    pod.write(good, b"0123456789")
    pod.write(short, b"01234")
    pod.write(INPUTS_CHECKLIST, checklist(("-", 10, good)))
    assert pod.run(STAGE_IN).returncode == 0

    pod.write(INPUTS_CHECKLIST, checklist(("-", 10, good), ("-", 10, short)))
    result = pod.run(STAGE_IN)
    assert result.returncode == 1
    assert pod.termination_message() == f"input {short} has 5 bytes, expected 10;"


def test_stage_out_discards_what_the_job_wrote_to_its_store_but_keeps_what_galaxy_reads(pod: Pod) -> None:
    job = f"{POD_ROOT}/job"
    output = f"{job}/outputs/dataset_abc.dat"
    pod.write(output, b"pushed by set_metadata\n")
    pod.write(f"{job}/outputs/dataset_abc_files/part.txt", b"extra\n")
    pod.write(f"{job}/outputs/tool_stdout", b"stdout\n")
    pod.write(f"{job}/working/galaxy.json", b"{}\n")
    pod.write(f"{job}/working/out/part_1.txt", b"discovered\n")
    pod.write(f"{job}/metadata/outputs_populated/datasets_attrs.txt", b"[]")
    pod.write(OUTPUTS_LIST, outputs_list(("out-abc", "file", output)))
    pod.write(step_exit_file("run"), "0\n")
    pod.write(step_exit_file("metadata"), "0\n")
    pod.write(
        DISCARD_LIST,
        f"keep {job}/working/galaxy.json\ndiscard {job}/working\ndiscard {job}/outputs/dataset_*\n",
    )

    result = pod.run(STAGE_OUT)

    assert result.returncode == 0, result.stderr
    assert pod.manifest()["files"] == [file_entry("out-abc", output, b"pushed by set_metadata\n")]
    left = sorted(str(p.relative_to(pod.host(job))) for p in pod.host(job).rglob("*") if p.is_file())
    assert left == [
        "metadata/outputs_populated/datasets_attrs.txt",
        "outputs/tool_stdout",
        "working/galaxy.json",
    ]
    assert pod.host(f"{job}/working/galaxy.json").read_bytes() == b"{}\n"
