#!/usr/bin/env bash
# Install the peer simulators of benchmarks/peers.py into separate virtual environments.
#
#   bash benchmarks/peers/install.sh                 # into /tmp/vbtjax-peers/{tvb,vbjax,neurolib}
#   bash benchmarks/peers/install.sh DIR             # into DIR/{tvb,vbjax,neurolib}
#   bash benchmarks/peers/install.sh DIR tvb vbjax   # only some of them
#
# Idempotent: a venv whose marker file names the same pinned requirement is left alone (delete the folder, or set
# FORCE=1, to rebuild it). Each venv gets a `freeze.txt` (pip freeze: every version that was installed), which
# benchmarks/peers.py copies into its results. None of this is a dependency of vbtjax: it is only for benchmarking.
set -euo pipefail

ROOT="${1:-${VBTJAX_PEERS:-/tmp/vbtjax-peers}}"
shift || true
PEERS=("$@")
if [ ${#PEERS[@]} -eq 0 ]; then PEERS=(tvb vbjax neurolib); fi
PYTHON="${PYTHON:-python3}"

# The pinned top-level requirements (the latest releases on PyPI when this was written). TVB's simulator needs
# neither tvb-data (the benchmark hands every tool the same connectome as an .npz) nor tvb-framework.
declare -A REQS=(
  [tvb]="tvb-library==2.10.0"
  [vbjax]="vbjax==0.0.19 tqdm==4.70.1"   # vbjax 0.0.19 imports tqdm but does not declare it
  [neurolib]="neurolib==0.6.2"
)

mkdir -p "$ROOT"
for name in "${PEERS[@]}"; do
  req="${REQS[$name]:-}"
  if [ -z "$req" ]; then echo "unknown peer '$name' (tvb, vbjax, neurolib)" >&2; exit 2; fi
  venv="$ROOT/$name"
  marker="$venv/.vbtjax-peer"
  if [ "${FORCE:-0}" != 1 ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$req" ]; then
    echo "[$name] already installed in $venv ($req)"
    continue
  fi
  echo "[$name] installing $req into $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install --quiet $req
  "$venv/bin/python" -m pip freeze > "$venv/freeze.txt"
  echo "$req" > "$marker"
  echo "[$name] done: $(grep -i -E "^(${req%%==*})==" "$venv/freeze.txt" || true)"
done
echo "peers in $ROOT: ${PEERS[*]}"
