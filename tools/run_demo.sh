#!/usr/bin/env bash
# Offline CPU demo of the whole method on the synthetic shapes domain:
#   (a) a PromptSRC teacher (tiny "large" CLIP) learns prompts on the labeled
#       base classes;
#   (b) its stored text features of all classes and its soft labels on the
#       unlabeled images of all classes train the tiny student;
#   (c) the student alone is evaluated: base / novel / HM, next to the
#       zero-shot student CLIP it started from.
# Both tiny CLIPs load their pre-trained weights (checkpoints/tiny_clip) by
# default, see configs/_base_/models/promptkd_tiny-clip.py.
# Usage: bash tools/run_demo.sh [WORK_DIR]    (under 5 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK_DIR=${1:-work_dirs/demo_$(date +%Y%m%d_%H%M%S)}
DATA=${DATA:-data/synthetic_shapes}
TEACHER_CONFIG=configs/promptsrc/promptsrc_tiny-clip_1xb32-16shot-5e_b2n-synthetic-shapes.py
STUDENT_CONFIG=configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py
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
python tools/test.py "$STUDENT_CONFIG" "$WORK_DIR/student/epoch_20.pth" \
    --work-dir "$WORK_DIR/student" --out "$WORK_DIR/student/results.json" \
    --cfg-options $DATA_OPTIONS \
    model.teacher.checkpoint="$WORK_DIR/teacher/epoch_5.pth"

echo "== baseline: the zero-shot student CLIP (\"a photo of a {}.\")"
python -m benchmarks synthetic_b2n --rows student_zs --seeds 1 \
    --data "$DATA" --work-dir "$WORK_DIR/baseline" > "$WORK_DIR/baseline.log"

python - "$WORK_DIR" <<'EOF'
import json
import sys

work_dir = sys.argv[1]
rows = [('teacher PromptSRC (a)', 'teacher/results.json'),
        ('student zero-shot', 'baseline/zero_shot/student_zs/results.json'),
        ('student PromptKD (c)', 'student/results.json')]
print(f'{"":24s} {"base":>6s} {"novel":>6s} {"HM":>6s}')
for name, path in rows:
    with open(f'{work_dir}/{path}') as f:
        m = json.load(f)
    print(f'{name:24s} ' + ' '.join(
        f'{m["b2n/" + k]:6.2f}' for k in ('base', 'novel', 'hm')))
EOF
echo "== results in $WORK_DIR/{teacher,student,baseline}"
