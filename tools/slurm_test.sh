#!/usr/bin/env bash
# Test a checkpoint on a Slurm cluster with srun, one task per GPU.
#
#   [GPUS=8] bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT \
#       [test.py options]
#
# Environment: GPUS (8, total tasks), GPUS_PER_NODE (8, tasks per node),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun options), GRES (the generic
# resource to request, gpu:$GPUS_PER_NODE). On a partition without GPUs set
# GRES= (empty): GPUS and GPUS_PER_NODE then count CPU processes, which run
# with the gloo backend.

# mmengine's Slurm launcher asks scontrol for the first node's address;
# without it the processes would wait for each other forever.
for cmd in srun scontrol; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "$(basename "$0"): '$cmd' is not on PATH; run this on a Slurm" \
            "login node, or use tools/dist_${0##*slurm_} on one machine" >&2
        exit 1
    fi
done

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:${GPUS_PER_NODE}}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=("${@:5}")

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    ${GRES:+--gres=${GRES}} \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u "$(dirname "$0")/test.py" "${CONFIG}" "${CHECKPOINT}" \
    --launcher="slurm" "${PY_ARGS[@]}"
