# PromptKD distilled from a teacher ensemble: PromptKD's PromptSRC ViT-L/14
# teacher and a zero-shot SigLIP2 ViT-L/16 at 256 px (open_clip's webli weights; its own 0.5 / 0.5 input normalisation, declared by the weights),
# weighted per image by their confidence (docs/teacher_ensembles.md). The
# student's text features come from the PromptSRC teacher (the first
# member); each member gets the images at its own size and normalisation.
_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

model = dict(
    teacher=dict(
        _delete_=True,
        type='TeacherEnsemble',
        weighting='confidence',
        confidence='max_prob',
        members=[
            # The base config's teacher, with this dataset's checkpoint.
            dict(teacher={{_base_.model.teacher}}),
            dict(teacher=dict(type='PromptedCLIP', clip=dict(
                model_name='ViT-L-16-SigLIP2-256', pretrained='webli'))),
        ]))
