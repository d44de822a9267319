_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Cross-dataset (direct transfer): evaluate the ImageNet student on SUN397 with
#   python tools/test.py THIS_CONFIG work_dirs/<imagenet run>/epoch_20.pth
# New classes: the teacher computes their text features once at test start.
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='CoOpSUN397',
        data_root='data/',
        split='test',
        pipeline={{_base_.test_pipeline}}))
