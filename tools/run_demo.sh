#!/usr/bin/env bash
# Offline CPU demo of the whole method on the synthetic shapes domain:
#   (a) a PromptSRC teacher (tiny "large" CLIP) learns prompts on the labeled
#       base classes;
#   (b) its stored text features of all classes and its soft labels on the
#       unlabeled images of all classes train the tiny student;
#   (c) the student alone is evaluated: base / novel / HM.
# Usage: bash tools/run_demo.sh [WORK_DIR]    (a few minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK_DIR=${1:-work_dirs/demo_$(date +%Y%m%d_%H%M%S)}
DATA=${DATA:-data/synthetic_shapes}
TEACHER_CONFIG=configs/promptsrc/promptsrc_tiny-clip_16shot-5e_b2n-synthetic-shapes.py
STUDENT_CONFIG=configs/promptkd/promptkd_tiny-clip_10e_b2n-synthetic-shapes.py
DATA_OPTIONS="train_dataloader.dataset.data_root=$DATA \
val_dataloader.dataset.data_root=$DATA test_dataloader.dataset.data_root=$DATA"

echo "== data: $DATA"
python tools/misc/generate_shapes_dataset.py "$DATA"

echo "== (a) teacher: PromptSRC on the labeled base classes"
python tools/train.py "$TEACHER_CONFIG" --work-dir "$WORK_DIR/teacher" \
    --cfg-options $DATA_OPTIONS
python tools/test.py "$TEACHER_CONFIG" "$WORK_DIR/teacher/epoch_5.pth" \
    --work-dir "$WORK_DIR/teacher" --out "$WORK_DIR/teacher/results.json" \
    --cfg-options $DATA_OPTIONS

echo "== (b) student: distillation on unlabeled images of all classes"
python tools/train.py "$STUDENT_CONFIG" --work-dir "$WORK_DIR/student" \
    --cfg-options $DATA_OPTIONS \
    model.teacher.checkpoint="$WORK_DIR/teacher/epoch_5.pth"

echo "== (c) the student alone: base / novel / HM"
python tools/test.py "$STUDENT_CONFIG" "$WORK_DIR/student/epoch_10.pth" \
    --work-dir "$WORK_DIR/student" --out "$WORK_DIR/student/results.json" \
    --cfg-options $DATA_OPTIONS \
    model.teacher.checkpoint="$WORK_DIR/teacher/epoch_5.pth"
echo "== results in $WORK_DIR/{teacher,student}/results.json"
