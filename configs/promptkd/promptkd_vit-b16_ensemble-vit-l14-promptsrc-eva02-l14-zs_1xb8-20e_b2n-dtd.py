# PromptKD distilled from a teacher ensemble: PromptKD's PromptSRC ViT-L/14
# teacher and a zero-shot EVA02-L/14 (open_clip's merged2b_s4b_b131k weights),
# weighted per image by their confidence (docs/teacher_ensembles.md). The
# student's text features come from the PromptSRC teacher (the first
# member); each member gets the images at its own size and normalisation.
_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py']

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
                model_name='EVA02-L-14', pretrained='merged2b_s4b_b131k'))),
        ]))
