"""POSIX sh run by the job pod's containers: verify inputs, run a step, write the outputs manifest.

They run in `ArgoSettings.stage_image` (busybox by default) and in the tool's own image, so they
use only POSIX sh, ``sha256sum``, ``stat``, ``find``, ``sort`` and ``awk``, all in busybox and GNU
coreutils. Argo's emissary starts a containerSet container only when its dependencies *succeeded*
(``cmd/argoexec/commands/emissary.go``: "dependency %q exited with non-zero code"), so the step
wrapper records the tool's exit code in the control directory and exits 0: stage-out (``main``)
then still runs and returns what a failed tool wrote (stderr, partial outputs). A step killed by a
signal (OOM, termination) keeps its code so Kubernetes reports the kill as it happened.

Control files, all under `galaxy_argo.core.spec.CONTROL_DIR`:

- ``inputs.sha256``: ``<sha256> <size> <path>`` per input dataset (a raw artifact); stage-in checks.
  ``-`` for the sha256 checks the size alone (a dataset read in place whose digest Galaxy lacks).
- ``discard.list``: ``discard <glob>`` / ``keep <path>`` lines (a raw artifact): what stage-out
  deletes before Argo saves the job directory, because the job wrote it to Galaxy's store itself.
- ``outputs.list``: ``<name> <file|dir> <path>`` per expected output (a raw artifact); stage-in
  creates the directories, stage-out lists a ``dir`` output's files as ``<name>/<relative path>``.
- ``<step>.exit``: exit code of a step (``run``, ``metadata``).
- ``outputs.json``: the outputs manifest stage-out writes, see `MANIFEST_VERSION`.
- ``returned/<name>``: each output, moved there by stage-out after hashing (`RETURNED_DIR`).
"""

from __future__ import annotations

from galaxy_argo.core.spec import CONTROL_DIR

__all__ = [
    "DISCARD_LIST",
    "INPUTS_CHECKLIST",
    "MANIFEST_VERSION",
    "OUTPUTS_LIST",
    "OUTPUTS_MANIFEST",
    "STAGE_IN",
    "STAGE_OUT",
    "RETURNED_DIR",
    "STEP_WRAPPER",
    "returned_path",
    "step_exit_file",
]

INPUTS_CHECKLIST = f"{CONTROL_DIR}/inputs.sha256"
OUTPUTS_LIST = f"{CONTROL_DIR}/outputs.list"
DISCARD_LIST = f"{CONTROL_DIR}/discard.list"
OUTPUTS_MANIFEST = f"{CONTROL_DIR}/outputs.json"
#: Where stage-out moves each output after hashing it; Argo saves the output artifacts from here.
#: Moving (a rename on the shared volume) keeps outputs out of the job-directory tarball, so each
#: output crosses the network once, uncompressed, whatever directory the tool wrote it in.
RETURNED_DIR = f"{CONTROL_DIR}/returned"
#: Version of ``outputs.json``: ``{"version", "exit_code", "metadata_exit_code", "files", "missing"}``.
MANIFEST_VERSION = 1


def returned_path(name: str) -> str:
    """Pod path Argo saves output ``name`` from (stage-out moves it there)."""
    return f"{RETURNED_DIR}/{name}"


def step_exit_file(step: str) -> str:
    """Path of the file where the wrapper of ``step`` records its command's exit code."""
    return f"{CONTROL_DIR}/{step}.exit"


#: Stage-in: create output directories, then check every input's size and sha256. Fails (exit 1,
#: reason in the termination message) naming each missing or corrupt input.
STAGE_IN = f"""\
set -u
ctl={CONTROL_DIR}
fail() {{
  echo "galaxy-argo stage-in: $*" >&2
  printf '%s' "$*" > /dev/termination-log 2>/dev/null
  exit 1
}}
mkdir -p "$ctl" || fail "cannot create $ctl"
if [ -f {OUTPUTS_LIST} ]; then
  while read -r name kind path; do
    [ -n "$path" ] || continue
    if [ "$kind" = dir ]; then mkdir -p "$path"; else mkdir -p "$(dirname "$path")"; fi
  done < {OUTPUTS_LIST}
fi
errors="$ctl/stage-in.errors"
: > "$errors"
count=0
if [ -f {INPUTS_CHECKLIST} ]; then
  while read -r want size path; do
    [ -n "$path" ] || continue
    count=$((count + 1))
    if [ ! -f "$path" ]; then echo "missing input $path" >> "$errors"; continue; fi
    got=$(stat -c %s "$path")
    if [ "$got" != "$size" ]; then
      echo "input $path has $got bytes, expected $size" >> "$errors"; continue
    fi
    [ "$want" = - ] && continue
    have=$(sha256sum < "$path" | cut -d ' ' -f 1)
    [ "$have" = "$want" ] || echo "input $path has sha256 $have, expected $want" >> "$errors"
  done < {INPUTS_CHECKLIST}
fi
if [ -s "$errors" ]; then fail "$(tr '\\n' ';' < "$errors")"; fi
echo "galaxy-argo stage-in: $count input(s) verified"
"""

#: Step wrapper, ``sh -c STEP_WRAPPER <step> <command line> <working directory>``.
STEP_WRAPPER = f"""\
set -u
step=$0
mkdir -p {CONTROL_DIR}
if cd "$2"; then
  /bin/sh -c "$1"
  code=$?
else
  echo "galaxy-argo: cannot enter working directory $2" >&2
  code=126
fi
echo "$code" > "{CONTROL_DIR}/$step.exit"
echo "galaxy-argo: $step exited with code $code" >&2
if [ "$code" -gt 128 ]; then exit "$code"; fi
exit 0
"""

# awk turns the rows stage-out collects into JSON, escaping what JSON needs escaped. A row is a line
# ``file`` or ``missing`` then one line per field (name, path, size, sha256): not TSV, since names
# and paths may hold tabs (not newlines: the control files are line-based).
_MANIFEST_AWK = r"""
function esc(s,   out, i, c) {
  out = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "\\") out = out "\\\\"
    else if (c == "\"") out = out "\\\""
    else if (c in ctl) out = out sprintf("\\u%04x", ctl[c])
    else out = out c
  }
  return out
}
BEGIN { nf = 0; nm = 0; want = 0; for (i = 1; i < 32; i++) ctl[sprintf("%c", i)] = i }
want == 0 { kind = $0; n = 0; want = (kind == "file") ? 4 : 1; next }
{ field[++n] = $0 }
n < want { next }
kind == "file" {
  files[nf++] = sprintf("{\"name\": \"%s\", \"path\": \"%s\", \"size\": %s, \"sha256\": \"%s\"}",
                        esc(field[1]), esc(field[2]), field[3], field[4])
}
kind == "missing" { missing[nm++] = sprintf("\"%s\"", esc(field[1])) }
{ want = 0 }
END {
  printf "{\"version\": %d, \"exit_code\": %s, ", version, ec > dest
  printf "\"metadata_exit_code\": %s, \"files\": [", mec > dest
  for (i = 0; i < nf; i++) printf "%s%s", (i ? ", " : ""), files[i] > dest
  printf "], \"missing\": [" > dest
  for (i = 0; i < nm; i++) printf "%s%s", (i ? ", " : ""), missing[i] > dest
  print "]}" > dest
  close(dest)
  printf "galaxy-argo stage-out: %d file(s), %d missing\n", nf, nm
}
"""

#: Stage-out, the containerSet's ``main``: hash every expected output, write the manifest that
#: Argo saves with the outputs, and end with the tool's exit code so the node shows the failure.
STAGE_OUT = f"""\
set -u
ctl={CONTROL_DIR}
mkdir -p "$ctl"
num() {{ v=$(cat "$1" 2>/dev/null | tr -dc '0-9'); echo "${{v:-null}}"; }}
ec=$(num {step_exit_file("run")})
mec=$(num {step_exit_file("metadata")})
rows="$ctl/outputs.rows"
: > "$rows"
emit() {{
  size=$(stat -c %s "$2")
  sum=$(sha256sum < "$2" | cut -d ' ' -f 1)
  printf 'file\\n%s\\n%s\\n%s\\n%s\\n' "$1" "$2" "$size" "$sum" >> "$rows"
}}
mkdir -p {RETURNED_DIR}
if [ -f {OUTPUTS_LIST} ]; then
  while read -r name kind path; do
    [ -n "$path" ] || continue
    if [ "$kind" != dir ] && [ -f "$path" ]; then
      emit "$name" "$path"
      mv "$path" "{RETURNED_DIR}/$name"
    elif [ "$kind" = dir ] && [ -d "$path" ]; then
      find "$path" -type f | sort | while IFS= read -r f; do emit "$name/${{f#"$path"/}}" "$f"; done
      mv "$path" "{RETURNED_DIR}/$name"
    else
      printf 'missing\\n%s\\n' "$name" >> "$rows"
    fi
  done < {OUTPUTS_LIST}
fi
awk -v version={MANIFEST_VERSION} -v ec="$ec" -v mec="$mec" -v dest={OUTPUTS_MANIFEST}.tmp \\
  '{_MANIFEST_AWK}' "$rows"
mv {OUTPUTS_MANIFEST}.tmp {OUTPUTS_MANIFEST}
if [ -f {DISCARD_LIST} ]; then
  kept="$ctl/kept"
  rm -rf "$kept" && mkdir -p "$kept"
  n=0
  while read -r what path; do
    [ "$what" = keep ] && [ -e "$path" ] || continue
    n=$((n + 1)); mkdir -p "$kept/$n" && mv "$path" "$kept/$n/" && echo "$n $path" >> "$kept/list"
  done < {DISCARD_LIST}
  while read -r what pattern; do
    [ "$what" = discard ] || continue
    for p in $pattern; do if [ -e "$p" ]; then rm -rf "$p"; fi; done
  done < {DISCARD_LIST}
  if [ -f "$kept/list" ]; then
    while read -r n path; do
      mkdir -p "$(dirname "$path")" && mv "$kept/$n/$(basename "$path")" "$path"
    done < "$kept/list"
  fi
  echo "galaxy-argo stage-out: discarded what the job wrote to its object store"
fi
reason=""
status=0
if [ "$ec" = null ]; then
  reason="the tool step recorded no exit code"; status=1
elif [ "$ec" != 0 ]; then
  reason="tool exited with code $ec"; status=$ec
elif [ "$mec" != null ] && [ "$mec" != 0 ]; then
  reason="metadata step exited with code $mec"; status=1
fi
# 64 is Argo's emissary-error code (the node would turn Error and be retried): report it as 1.
if [ "$status" = 64 ] || [ "$status" -gt 255 ]; then status=1; fi
if [ -n "$reason" ]; then
  echo "galaxy-argo stage-out: $reason" >&2
  printf '%s' "$reason" > /dev/termination-log 2>/dev/null
fi
exit "$status"
"""
