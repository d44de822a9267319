# Distil a ViT-B/16 student for your own domain from unlabeled images and a
# list of class names (docs/unlabeled_data.md). Point the two paths of
# ../_base_/datasets/unlabeled-folder.py at your data, e.g.
#   --cfg-options train_dataloader.dataset.data_root=data/my_domain/images \
#     train_dataloader.dataset.classes=data/my_domain/classes.txt \
#     val_dataloader.dataset.data_root=data/my_domain/images \
#     val_dataloader.dataset.classes=data/my_domain/classes.txt
_base_ = [
    '../_base_/models/promptkd_vit-b16_vit-l14.py',
    '../_base_/datasets/unlabeled-folder.py',
    '../_base_/schedules/promptkd_sgd_20e.py',
    '../_base_/default_runtime.py',
]

# Your domain has no labels to learn teacher prompts from: the teacher is
# the released PromptSRC ViT-L/14 teacher of ImageNet (prompts learned on
# all 1,000 classes; converted with
# tools/model_converters/promptkd_official_to_mmpromptkd.py). Any stage-(a)
# checkpoint of a related labeled dataset works the same way.
model = dict(
    teacher=dict(checkpoint='checkpoints/promptkd_teachers/imagenet.pth'),
    # Teacher scores for TeacherStudentAgreement on the held-out images.
    predict_teacher=True)
default_hooks = dict(
    checkpoint=dict(save_best='agreement/top1', rule='greater'))
