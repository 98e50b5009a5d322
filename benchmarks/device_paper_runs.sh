#!/usr/bin/env bash
# Full-size paper runs on one GPU machine, in one call of a time-limited GPU lease.
#
#   bash benchmarks/device_paper_runs.sh run DEADLINE_S EXPERIMENT...   # install, smoke, build, train
#   bash benchmarks/device_paper_runs.sh collect DEADLINE_S             # wait for the runs, pack again
#
# `run`: installs qeframe into the machine's Python (wheels in .whl/ for what its image lacks), runs
# the CUDA smoke tests (tests/experiment/test_end_to_end_builtin.py), builds the datasets the experiments need
# with every core, then starts one `qeframe run EXPERIMENT --device $DEVICE` process per experiment,
# all at once (each in its own session, so they outlive this script), and polls them. When all have
# finished, or DEADLINE_S seconds after the start, it packs every run folder into $OUT/<exp>.tgz
# (weights of the selected epoch only; ensemble member weights are left out) and the logs into
# $OUT/logs.tgz. `collect` (a later call on the same machine) waits for the same processes and packs
# again. Times in driver.log are wall seconds since the script started.
#
# Environment: DEVICE (default cuda), WORKERS (default: all cores), EXTRA_ARGS (added to every
# `qeframe run`, e.g. "--epochs 1" for a dry run), SMOKE=0 skips the smoke tests, INSTALL=0 uses the
# qeframe already installed (a dry run on a development machine: DEVICE=cpu INSTALL=0).
set -u
mode=${1:?mode: run or collect}
deadline=${2:?deadline in seconds}
shift 2
start=$(date +%s)
OUT=${OUT:-/tmp/qeframe-out}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-$(nproc)}
EXTRA_ARGS=${EXTRA_ARGS:-}
STATE=.device-state
mkdir -p "$OUT" "$STATE/logs"
export PYTHONUNBUFFERED=1
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site

log() { printf '[%4ds] %s\n' $(($(date +%s) - start)) "$*" | tee -a "$STATE/driver.log"; }
elapsed() { echo $(($(date +%s) - start)); }

pack() {
    local exp dir
    for exp in $(cat "$STATE/experiments"); do
        dir=runs/$exp
        [ -d "$dir" ] || continue
        tar czf "$OUT/$exp.tgz" --exclude='epoch-*.safetensors' --exclude='*.state.safetensors' \
            --exclude='member-*/checkpoints/*.safetensors' "$dir"
    done
    nvidia-smi >"$STATE/nvidia-smi.txt" 2>&1 || true
    tar czf "$OUT/logs.tgz" "$STATE/logs" "$STATE"/*.json "$STATE/driver.log" "$STATE/gpu.csv" "$STATE/nvidia-smi.txt" 2>/dev/null
    log "packed: $(ls "$OUT" | tr '\n' ' ')"
}

status_line() {
    local exp pid line="" epoch newest
    for exp in $(cat "$STATE/experiments"); do
        pid=$(cat "$STATE/$exp.pid" 2>/dev/null || echo 0)
        newest=$(ls -td runs/"$exp"/*/ 2>/dev/null | head -n 1)
        epoch=$(cat "${newest}metrics.jsonl" "${newest}"ensemble/member-*/metrics.jsonl 2>/dev/null | wc -l)
        if [ -f "$STATE/$exp.rc" ]; then
            line+=" $exp=rc$(cat "$STATE/$exp.rc")"
        elif kill -0 "$pid" 2>/dev/null; then
            line+=" $exp=ep$epoch"
        else
            line+=" $exp=gone"
        fi
    done
    echo "$line"
}

running() {
    local exp pid
    for exp in $(cat "$STATE/experiments"); do
        pid=$(cat "$STATE/$exp.pid" 2>/dev/null || echo 0)
        if [ ! -f "$STATE/$exp.rc" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
    done
    return 1
}

wait_runs() {
    while running && [ "$(elapsed)" -lt "$deadline" ]; do
        sleep 10
        log "$(status_line) | gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | tr -d '\n')"
    done
    log "final:$(status_line)"
    for exp in $(cat "$STATE/experiments"); do
        if [ -f "$STATE/$exp.rc" ] && [ "$(cat "$STATE/$exp.rc")" != 0 ]; then
            log "--- $exp failed; log tail:"
            tail -n 25 "$STATE/logs/$exp.log"
        fi
    done
}

if [ "$mode" = collect ]; then
    wait_runs
    pack
    exit 0
fi

printf '%s\n' "$@" >"$STATE/experiments"
log "machine: $(nproc) cores, $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
if [ "${INSTALL:-1}" = 1 ] && [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
if [ "${INSTALL:-1}" = 1 ]; then
    python3 -m pip install -q --no-deps --no-build-isolation --no-index . >"$STATE/logs/install.log" 2>&1 || {
        tail -n 20 "$STATE/logs/install.log"
        exit 1
    }
fi
log "installed: $(python3 -m qeframe.cli --version) torch $(python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available())')"
(nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 >"$STATE/gpu.csv" 2>/dev/null &)

if [ "${SMOKE:-1}" = 1 ]; then
    python3 -m pytest -q -x -p no:cacheprovider -k "$DEVICE" tests/experiment/test_end_to_end_builtin.py >"$STATE/logs/smoke.log" 2>&1
    rc=$?
    log "smoke tests: rc=$rc $(tail -n 1 "$STATE/logs/smoke.log")"
    if [ $rc != 0 ]; then
        tail -n 60 "$STATE/logs/smoke.log"
        pack
        exit 1
    fi
fi

# training throughput alone on the machine (synthetic data), before anything else loads it
if [ "${BENCH:-1}" = 1 ]; then
    for backbone in cnn tensor_network; do
        python3 benchmarks/bench_train.py --backbone $backbone --device "$DEVICE" --samples 51200 --epochs 2 \
            --out "$STATE/train_${DEVICE}_$backbone.json" >"$STATE/logs/bench_$backbone.log" 2>&1
        log "bench $backbone rc=$?: $(tr '\n' ';' <"$STATE/logs/bench_$backbone.log")"
    done
fi

# datasets of all experiments (train, validation, test), built once with every core
datasets=$(python3 - "$@" <<'EOF'
import sys
from qeframe.config.specs import load_registry_file
reg = load_registry_file("registry.toml")
names = []
for e in sys.argv[1:]:
    x = reg.experiments[e]
    for n in [x.train, *x.validation, *x.test]:
        if n not in names:
            names.append(n)
print(" ".join(names))
EOF
) || exit 1
log "building: $datasets"
python3 -m qeframe.cli data build $datasets --workers "$WORKERS" --no-progress >"$STATE/logs/build.log" 2>&1 || {
    tail -n 30 "$STATE/logs/build.log"
    exit 1
}
cat "$STATE/logs/build.log"
log "datasets built"

for exp in "$@"; do
    rm -f "$STATE/$exp.rc"
    setsid bash -c "OMP_NUM_THREADS=2 python3 -m qeframe.cli run $exp --device $DEVICE $EXTRA_ARGS >$STATE/logs/$exp.log 2>&1; echo \$? >$STATE/$exp.rc" &
    echo $! >"$STATE/$exp.pid"
    log "started $exp (pid $(cat "$STATE/$exp.pid"))"
done
wait_runs
pack
