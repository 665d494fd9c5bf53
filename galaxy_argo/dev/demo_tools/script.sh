#!/bin/bash
# Number the lines of $1 into $2 (argo_script.xml); report on stderr.
set -euo pipefail
nl -b a -w 1 -s ': ' "$1" > "$2"
echo "script.sh numbered $(wc -l < "$1") lines" >&2
