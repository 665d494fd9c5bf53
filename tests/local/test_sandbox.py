"""Bubblewrap sandboxes for real: bwrap, the host's cgroups, argosay and busybox; no mocks.

Synchronisation is by waiting on the container or polling /proc under a deadline, never by sleeping.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from galaxy_argo.local.sandbox import (
    DEFAULT_PATH,
    MEMORY_ENFORCEMENT_ENV,
    ContainerResult,
    ContainerSpec,
    ImageEntry,
    ImageMap,
    ImageMapError,
    MemoryEnforcement,
    Mount,
    RunningContainer,
    SandboxError,
    memory_enforcement,
    start,
)

pytestmark = pytest.mark.engine

MIB = 2**20
# Grows by 8 MiB every 10 ms up to 4 GiB: only a memory limit ends it early.
GROW = "import time\nb = []\nfor _ in range(512):\n    b.append(bytearray(8 * 2**20))\n    time.sleep(0.01)"


@pytest.fixture(scope="module", autouse=True)
def _bwrap_installed() -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap (bwrap) is required for the sandbox tests: apt-get install bubblewrap")


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., tuple[ContainerResult, str, str]]:
    """Run a container to completion; returns (result, stdout, stderr)."""

    def _run(argv: list[str], timeout: float = 20, **kwargs: Any) -> tuple[ContainerResult, str, str]:
        image_map, enforcement = kwargs.pop("image_map", None), kwargs.pop("enforcement", None)
        running = start(_spec(tmp_path, argv, **kwargs), image_map, enforcement=enforcement)
        result = running.wait(timeout)
        if result is None:
            running.kill()
            pytest.fail(f"{argv} still running after {timeout} s")
        return result, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()

    return _run


def _spec(tmp_path: Path, argv: list[str], **kwargs: Any) -> ContainerSpec:
    fields: dict[str, Any] = {
        "env": {},
        "working_dir": None,
        "mounts": [],
        "memory_limit_bytes": None,
        "stdout_path": tmp_path / "stdout",
        "stderr_path": tmp_path / "stderr",
    }
    fields.update(kwargs)
    return ContainerSpec(argv=argv, **fields)


def _children() -> dict[int, list[int]]:
    table: dict[int, list[int]] = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        table.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
    return table


def _tree(pid: int) -> list[int]:
    table, found, todo = _children(), [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(table.get(found[-1], []))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.01)


def _sandboxed(running: RunningContainer, comm: str) -> list[int]:
    """Wait until the sandbox runs ``comm``; return the whole tree then."""
    _until(lambda: any(_comm(p) == comm for p in _tree(running.pid)), 10, f"{comm} in the sandbox")
    return _tree(running.pid)


# --- exit codes, logs, environment ------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(0, "Completed"), (3, "Error")])
def test_exit_code_and_reason(run: Callable[..., Any], code: int, reason: str) -> None:
    result, _, _ = run(["sh", "-c", f"exit {code}"])
    assert (result.exit_code, result.reason, result.message) == (code, reason, "")
    assert result.started_at.tzinfo is not None and result.started_at <= result.finished_at


def test_stdout_and_stderr_land_in_their_files(run: Callable[..., Any]) -> None:
    _, out, err = run(["sh", "-c", "echo to-out; echo to-err >&2"])
    assert (out, err) == ("to-out\n", "to-err\n")


def test_stdout_and_stderr_can_share_one_file(tmp_path: Path) -> None:
    log = tmp_path / "combined.log"
    spec = _spec(
        tmp_path, ["sh", "-c", "echo one; echo two >&2; echo three"], stdout_path=log, stderr_path=log
    )
    assert start(spec).wait(10) is not None
    assert log.read_text() == "one\ntwo\nthree\n"


def test_env_working_dir_and_defaults(run: Callable[..., Any]) -> None:
    script = 'echo "$PATH|$HOME|$FOO|$(pwd)|$(env | grep -c .)"'
    _, out, _ = run(["sh", "-c", script], env={"FOO": "bar baz"}, working_dir="/work/dir")
    assert out == f"{DEFAULT_PATH}|/tmp|bar baz|/work/dir|4\n"  # PATH HOME FOO PWD: the host's env is gone
    _, out, _ = run(["sh", "-c", 'echo "$PATH $HOME $(pwd)"'], env={"PATH": "/bin", "HOME": "/h"})
    assert out == "/bin /h /\n"


def test_start_error_for_a_missing_command(run: Callable[..., Any]) -> None:
    result, _, err = run(["no-such-command-here"])
    assert (result.exit_code, result.reason) == (128, "StartError")
    assert "no-such-command-here" in result.message and result.message in err


# --- filesystem -----------------------------------------------------------------------------------


def test_bind_mount_is_writable_and_visible_on_the_host(run: Callable[..., Any], tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "in.txt").write_text("input")
    result, _, _ = run(
        ["sh", "-c", "cat in.txt > out.txt && mkdir -p sub && echo x > sub/y"],
        mounts=[Mount(job, "/galaxy/job")],
        working_dir="/galaxy/job",
    )
    assert result.exit_code == 0
    assert (job / "out.txt").read_text() == "input" and (job / "sub" / "y").read_text() == "x\n"


def test_read_only_mount_and_host_root_refuse_writes(run: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    single = tmp_path / "single.txt"
    single.write_text("file mount")
    script = (
        "for p in /data/new /usr/new /etc/new /new /opt/new; do"
        '  if touch "$p" 2>/dev/null; then echo "wrote $p"; fi; done;'
        " cat /in/single.txt; echo; echo ok > /tmp/t && cat /tmp/t"
    )
    result, out, _ = run(
        ["sh", "-c", script],
        mounts=[Mount(data, "/data", read_only=True), Mount(single, "/in/single.txt", read_only=True)],
    )
    assert result.exit_code == 0
    assert out == "file mount\nok\n"
    assert list(data.iterdir()) == []


def test_mounts_and_working_dir_inside_host_directories(run: Callable[..., Any], tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "app.conf").write_text("setting")
    script = (
        "pwd; cat /etc/config/app.conf; echo; echo new > /opt/galaxy-argo-test/data/x;"
        " touch /etc/new /etc/config-new 2>/dev/null || echo refused; test -f /etc/passwd && echo passwd"
    )
    result, out, err = run(
        ["sh", "-c", script],
        mounts=[Mount(config, "/etc/config", read_only=True), Mount(tmp_path, "/opt/galaxy-argo-test/data")],
        working_dir="/usr/local/galaxy-argo-test-app",
    )
    assert (result.exit_code, err) == (0, "")
    assert out == "/usr/local/galaxy-argo-test-app\nsetting\nrefused\npasswd\n"
    assert (tmp_path / "x").read_text() == "new\n"
    assert not Path("/etc/config").exists() and not Path("/usr/local/galaxy-argo-test-app").exists()
    _, out, _ = run(["pwd"], working_dir="/usr/bin")
    assert out == "/usr/bin\n"


def test_host_private_directories_are_not_visible(run: Callable[..., Any]) -> None:
    script = "for p in /work /root /home /var /sys /tmp/pytest-of-root; do test -e $p && echo $p; done; true"
    result, out, _ = run(["sh", "-c", script])
    assert (result.exit_code, out) == (0, "")


def test_network_is_isolated_unless_asked_for(run: Callable[..., Any]) -> None:
    names = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"
    _, out, _ = run(["sh", "-c", names])
    assert out.split() == ["lo"]
    host = [line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    _, out, _ = run(["sh", "-c", names], network=True)
    assert sorted(out.split()) == sorted(host)


@pytest.mark.parametrize("memory_limit", [None, 64 * MIB])  # with a limit, a cgroup gate may exec bwrap
def test_the_environment_stays_off_every_command_line(tmp_path: Path, memory_limit: int | None) -> None:
    # Env values can be Secrets, and /proc/PID/cmdline is readable by every user of the host.
    secret = "value-from-a-secret-0123"
    argv = ["sh", "-c", f'[ "${{#TOKEN}}" = {len(secret)} ] && exec sleep 30']
    running = start(_spec(tmp_path, argv, env={"TOKEN": secret}, memory_limit_bytes=memory_limit))
    try:
        tree = _sandboxed(running, "sleep")  # sh's test passed: the sandbox has the variable
        lines = []
        for pid in tree:
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                continue
        assert any(b"bwrap\0--args\0" in line for line in lines), lines
        assert not any(secret.encode() in line for line in lines)
    finally:
        running.kill()
        running.wait(timeout=10)


def test_termination_log_becomes_the_message(run: Callable[..., Any], tmp_path: Path) -> None:
    log = tmp_path / "termination" / "main"
    log.parent.mkdir()
    log.write_text("stale from a previous attempt")
    result, _, _ = run(
        ["sh", "-c", "printf '  disk full\\n\\n' > /dev/termination-log; exit 2"], termination_log=log
    )
    assert (result.exit_code, result.reason, result.message) == (2, "Error", "disk full")
    result, _, _ = run(
        ["sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x > /dev/termination-log"], termination_log=log
    )
    assert result.message == "x" * 4096


# --- memory limits ----------------------------------------------------------------------------


def _own_cgroup_dirs() -> list[Path]:
    """Our cgroup in the memory (v1) and unified (v2) hierarchies, where sandboxes' cgroups go."""
    dirs = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            dirs.append(Path("/sys/fs/cgroup/memory") / path.lstrip("/"))
        elif hierarchy == "0":
            dirs += [
                Path("/sys/fs/cgroup") / path.lstrip("/"),
                Path("/sys/fs/cgroup/unified") / path.lstrip("/"),
            ]
    return [d for d in dirs if (d / "cgroup.procs").exists()]


def _leftover_cgroups() -> list[Path]:
    return [c for d in _own_cgroup_dirs() for c in d.glob(f"galaxy-argo-{os.getpid()}-*")]


def test_memory_enforcement_is_chosen_once() -> None:
    chosen = memory_enforcement()
    assert chosen in set(MemoryEnforcement) and memory_enforcement() is chosen
    v1 = [d for d in _own_cgroup_dirs() if d.is_relative_to("/sys/fs/cgroup/memory")]
    if os.geteuid() == 0 and v1 and os.access(v1[0], os.W_OK) and MEMORY_ENFORCEMENT_ENV not in os.environ:
        assert chosen in ("cgroup-v1", "cgroup-v2")  # this machine: a writable v1 memory controller


def test_environment_variable_forces_the_mechanism(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setenv(MEMORY_ENFORCEMENT_ENV, "watchdog")
        memory_enforcement.cache_clear()
        assert memory_enforcement() == "watchdog"
        monkeypatch.setenv(MEMORY_ENFORCEMENT_ENV, "cgroup-v3")
        memory_enforcement.cache_clear()
        with pytest.raises(SandboxError, match="valid: auto, cgroup-v1, cgroup-v2, watchdog"):
            memory_enforcement()
    finally:
        memory_enforcement.cache_clear()  # recomputed with the restored environment


@pytest.mark.parametrize("enforcement", [None, "watchdog"])
def test_over_the_memory_limit_is_oom_killed(run: Callable[..., Any], enforcement: str | None) -> None:
    argv = ["python3", "-c", "b = bytearray(300 * 2**20)"] if enforcement is None else ["python3", "-c", GROW]
    result, _, _ = run(argv, memory_limit_bytes=64 * MIB, timeout=30, enforcement=enforcement)
    assert (result.exit_code, result.reason) == (137, "OOMKilled")
    assert (result.finished_at - result.started_at).total_seconds() < 5
    assert _leftover_cgroups() == []


def test_oom_of_a_child_ends_the_whole_container(run: Callable[..., Any]) -> None:
    script = "python3 -c 'b = bytearray(300 * 2**20)'; echo survived; sleep 30"
    result, _, _ = run(["sh", "-c", script], memory_limit_bytes=64 * MIB)
    assert (result.exit_code, result.reason) == (137, "OOMKilled")
    assert (result.finished_at - result.started_at).total_seconds() < 5


@pytest.mark.parametrize("enforcement", [None, "watchdog"])
def test_under_the_memory_limit_succeeds(run: Callable[..., Any], enforcement: str | None) -> None:
    code = "import time\nb = bytearray(20 * 2**20)\ntime.sleep(0.3)\nprint(len(b))"
    result, out, _ = run(["python3", "-c", code], memory_limit_bytes=64 * MIB, enforcement=enforcement)
    assert (result.exit_code, result.reason, out) == (0, "Completed", f"{20 * MIB}\n")
    assert _leftover_cgroups() == []


def test_forcing_an_unknown_mechanism_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="valid: auto, cgroup-v1, cgroup-v2, watchdog"):
        start(_spec(tmp_path, ["true"], memory_limit_bytes=MIB), enforcement="cgroup-v3")


# --- kill -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGKILL, 137), (signal.SIGTERM, 143)])
def test_kill_ends_the_whole_tree(tmp_path: Path, sig: int, code: int) -> None:
    running = start(_spec(tmp_path, ["sh", "-c", "sleep 100 & sleep 100; wait"], memory_limit_bytes=64 * MIB))
    assert running.poll() is None
    tree = _sandboxed(running, "sleep")
    if memory_enforcement() != "watchdog":
        assert len(_leftover_cgroups()) == 1  # the container's own cgroup, removed below
    assert len(tree) >= 4  # bwrap, bwrap as pid 1, sh, two sleeps
    begun = time.monotonic()
    running.kill(sig)
    result = running.wait(timeout=5)
    assert result is not None, "kill() did not end the container"
    assert time.monotonic() - begun < 2
    assert (result.exit_code, result.reason) == (code, "Error")
    _until(lambda: not any(_alive(pid) for pid in tree), 5, "every process of the sandbox to be gone")
    assert _leftover_cgroups() == []
    running.kill()  # after the end: a no-op


def test_container_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    """bwrap's --die-with-parent fires when the forking *thread* ends; start() must not tie it to ours."""
    started: list[RunningContainer] = []

    def starter() -> None:  # ends once the sandbox is surely up (bwrap has set its death signal)
        started.append(start(_spec(tmp_path, ["sh", "-c", "sleep 0.5"])))
        _sandboxed(started[0], "sleep")

    thread = threading.Thread(target=starter)
    thread.start()
    thread.join()
    result = started[0].wait(timeout=10)
    assert result is not None and (result.exit_code, result.reason) == (0, "Completed")


# --- images -----------------------------------------------------------------------------------


def test_argosay_image(run: Callable[..., Any], tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argosay = {"image": "argoproj/argosay:v2", "use_entrypoint": True, "mounts": [Mount(out_dir, "/out")]}
    result, _, _ = run(["echo", "hi", "/out/deep/x"], **argosay)
    assert result.exit_code == 0 and (out_dir / "deep" / "x").read_text() == "hi"
    assert run(["exit", "3"], **argosay)[0].exit_code == 3
    assert run(["cat", "/out/deep/x", "/out/deep/x"], **argosay)[1] == "hihi"
    assert run(["assert_contains", "/out/deep/x", "h"], **argosay)[0].exit_code == 0
    assert run(["assert_equals", "/out/deep/x", "hi"], **argosay)[0].exit_code == 0
    result, _, err = run(["assert_equals", "/out/deep/x", "ho"], **argosay)
    assert result.exit_code == 2 and "to equal" in err
    assert run(["sleep", "0.1s"], **argosay)[0].exit_code == 0
    assert run(["sleep", "1h2x"], **argosay)[0].exit_code == 2
    assert run([], image="docker.io/argoproj/argosay:v2")[1] == "hello argo\n"  # the entrypoint alone
    assert run(["argosay", "echo", "cmd"], image="argoproj/argosay:v2")[1] == "cmd\n"  # command given


def test_busybox_image_puts_applets_first(run: Callable[..., Any]) -> None:
    result, out, _ = run(["sh", "-c", "readlink -f $(command -v sha256sum)"], image="busybox:1.36")
    assert result.exit_code == 0 and Path(out.strip()).name == "busybox"
    _, out, _ = run(["sh", "-c", "readlink -f $(command -v sha256sum)"], image="python:3.12")
    assert Path(out.strip()).name != "busybox"  # unmapped images run the host's programs


def test_admin_image_map_from_yaml(run: Callable[..., Any], tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "tool").write_text('#!/bin/sh\necho "tool $GREETING $*"\n')
    (venv / "tool").chmod(0o755)
    doc = tmp_path / "images.yaml"
    doc.write_text(
        json.dumps(
            {
                "quay.io/galaxy/*": {
                    "entrypoint": ["tool", "default"],
                    "path_prepend": ["/galaxy/venv/bin"],
                    "extra_mounts": [{"source": str(venv.parent), "target": "/galaxy/venv"}],
                    "env": {"GREETING": "hello"},
                },
                "argoproj/argosay:*": {"entrypoint": ["echo", "overridden"]},
            }
        )
    )
    images = ImageMap.load(doc)
    assert images.resolve("quay.io/galaxy/x:1").env == {"GREETING": "hello"}
    assert run([], image="quay.io/galaxy/x:1", image_map=images)[1] == "tool hello default\n"
    assert (
        run(["a"], image="quay.io/galaxy/x:1", image_map=images, use_entrypoint=True)[1]
        == "tool hello default a\n"
    )
    assert run([], image="argoproj/argosay:v2", image_map=images)[1] == "overridden\n"
    assert ImageMap(builtins=False).resolve("busybox") == ImageEntry()


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"x": {"entrypoint": "sh"}}, "entrypoint: expected a list of strings"),
        ({"x": {"entry_point": ["sh"]}}, "unknown key.*entry_point; valid keys: entrypoint, path_prepend"),
        ({"x": {"extra_mounts": [{"source": "/a", "target": "rel"}]}}, "must be an absolute sandbox path"),
        ({"x": {"env": {"A": [1]}}}, "env must map names to scalar values"),
        (["x"], "expected a mapping of image pattern"),
    ],
)
def test_image_map_errors_name_the_problem(doc: Any, match: str) -> None:
    with pytest.raises(ImageMapError, match=match):
        ImageMap.from_mapping(doc)


def test_invalid_specs_raise_before_starting(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist on the host"):
        start(_spec(tmp_path, ["true"], mounts=[Mount(tmp_path / "missing", "/m")]))
    with pytest.raises(SandboxError, match="must be an absolute path"):
        start(_spec(tmp_path, ["true"], mounts=[Mount(tmp_path, "relative")]))
    with pytest.raises(SandboxError, match="cannot make /etc/passwd/x in the sandbox"):
        start(_spec(tmp_path, ["true"], mounts=[Mount(tmp_path, "/etc/passwd/x")]))
    with pytest.raises(SandboxError, match="no command and the image map gives no entrypoint"):
        start(_spec(tmp_path, [], image="alpine:3.23"))


# --- concurrency ------------------------------------------------------------------------------


def test_twenty_sandboxes_at_once(tmp_path: Path) -> None:
    """Started from twenty threads; each waits (up to 20 s) until all twenty have begun."""
    shared = tmp_path / "shared"
    shared.mkdir()
    barrier = (
        "echo $0 > /shared/$0; n=0; while [ $(ls /shared | wc -l) -lt 20 ]; do"
        "  n=$((n+1)); [ $n -gt 2000 ] && exit 99; sleep 0.01; done; exit $(( $0 % 3 ))"
    )

    def launch(i: int) -> RunningContainer:
        argv = ["sh", "-c", barrier, str(i)]
        image = "busybox" if i % 2 else ""
        return start(
            _spec(
                tmp_path / str(i),
                argv,
                mounts=[Mount(shared, "/shared")],
                memory_limit_bytes=64 * MIB,
                image=image,
            )
        )

    with ThreadPoolExecutor(20) as pool:
        running = list(pool.map(launch, range(20)))
    results = [r.wait(timeout=30) for r in running]
    assert [r.exit_code if r else None for r in results] == [i % 3 for i in range(20)]
    assert sorted(int(p.read_text()) for p in shared.iterdir()) == list(range(20))
    assert _leftover_cgroups() == []
