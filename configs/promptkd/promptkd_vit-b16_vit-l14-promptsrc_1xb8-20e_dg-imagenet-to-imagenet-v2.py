_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Domain generalisation: evaluate the ImageNet student on ImageNetV2 with
#   python tools/test.py THIS_CONFIG work_dirs/<imagenet run>/epoch_20.pth
# It has ImageNet's 1000 classes: the stored features are used as they are.
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='CoOpImageNetV2',
        data_root='data/',
        split='test',
        pipeline={{_base_.test_pipeline}}))
