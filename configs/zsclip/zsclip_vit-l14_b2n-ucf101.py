_base_ = [
    '../_base_/datasets/ucf101.py',
    './_base_/zsclip_vit-l14.py',
]
# Evaluation only: the test split of all classes for base / novel / HM.
