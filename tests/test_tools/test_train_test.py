"""tools/train.py and tools/test.py on the demo data, as a user runs them."""
import glob
import json
import os
import os.path as osp
import shutil

from helpers import DET_CONFIG, SEG_CONFIG, det_options, run_tool, seg_options


def _last_json(work_dir: str) -> dict:
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                  key=osp.getmtime)
    with open(logs[-1]) as f:
        return json.load(f)


def test_train_and_test_detector(demo_root, tmp_path):
    work = str(tmp_path / 'det')
    res = run_tool('train.py', DET_CONFIG, '--work-dir', work,
                   '--cfg-options', *det_options(demo_root))
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert 'loss_cls' in log and 'loss_bbox' in log
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)

    res = run_tool('test.py', DET_CONFIG, ckpt, '--work-dir', work,
                   '--out', str(tmp_path / 'preds.pkl'), '--cfg-options',
                   *det_options(demo_root))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = _last_json(work)
    # the reported mAP is that of the dumped predictions, recomputed here
    # with mmdet's own metric from the annotation file
    import pickle

    from mmdet.evaluation import CocoMetric
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    ann = osp.join(demo_root, 'coco/annotations/instances_val2017.json')
    with open(ann) as f:
        coco = json.load(f)
    assert len(preds) == len(coco['images'])
    assert all(len(p['pred_instances']['scores']) > 0 for p in preds)
    metric = CocoMetric(ann_file=ann, metric='bbox')
    metric.dataset_meta = dict(
        classes=[c['name'] for c in sorted(coco['categories'],
                                           key=lambda c: c['id'])])
    metric.process({}, preds)
    again = metric.compute_metrics(metric.results)
    assert abs(again['bbox_mAP'] - metrics['coco/bbox_mAP']) < 1e-3

    # --resume (auto) continues from iter_2 in the same work dir
    res = run_tool('train.py', DET_CONFIG, '--work-dir', work, '--resume',
                   '--cfg-options', *det_options(demo_root, iters=3))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 2' in res.stdout + res.stderr
    assert osp.isfile(osp.join(work, 'iter_3.pth'))


def test_train_and_test_segmentor(demo_root, tmp_path):
    work = str(tmp_path / 'seg')
    res = run_tool('train.py', SEG_CONFIG, '--work-dir', work,
                   '--cfg-options', *seg_options(demo_root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'SyncBN -> BN' in res.stdout  # converted on this CPU machine
    log = res.stdout + res.stderr
    assert 'decode.loss_ce' in log and 'aux.loss_ce' in log
    res = run_tool('test.py', SEG_CONFIG, osp.join(work, 'iter_2.pth'),
                   '--work-dir', work, '--cfg-options',
                   *seg_options(demo_root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'mIoU' in _last_json(work)


def test_missing_config_is_named(tmp_path):
    res = run_tool('train.py', str(tmp_path / 'no_such_config.py'))
    assert res.returncode != 0
    assert 'no_such_config.py' in res.stderr
    assert 'Traceback' not in res.stderr


def test_missing_data_leaves_no_work_dir(demo_root, tmp_path):
    work = tmp_path / 'work'
    opts = det_options(demo_root)
    opts[0] = f'train_dataloader.dataset.data_root={tmp_path}/absent/'
    res = run_tool('train.py', DET_CONFIG, '--work-dir', work,
                   '--cfg-options', *opts)
    assert res.returncode != 0
    assert f'{tmp_path}/absent/' in res.stderr
    assert 'train_dataloader.dataset.data_root' in res.stderr
    assert not work.exists()

    opts = det_options(demo_root) + [
        'val_evaluator.ann_file=/nonexistent/instances_val.json'
    ]
    res = run_tool('train.py', DET_CONFIG, '--work-dir', work,
                   '--cfg-options', *opts)
    assert res.returncode != 0
    assert '/nonexistent/instances_val.json' in res.stderr
    assert not work.exists()

    res = run_tool('test.py', DET_CONFIG, str(tmp_path / 'absent.pth'),
                   '--work-dir', work)
    assert res.returncode != 0 and 'absent.pth' in res.stderr
    assert not work.exists()


def test_unreadable_image_is_named(demo_root, tmp_path):
    coco = tmp_path / 'coco'
    shutil.copytree(osp.join(demo_root, 'coco'), coco)
    images = sorted(os.listdir(coco / 'train2017'))
    for name in images:  # every image, so the first batch meets one
        (coco / 'train2017' / name).write_bytes(b'not a jpeg')
    res = run_tool('train.py', DET_CONFIG, '--work-dir', tmp_path / 'work',
                   '--cfg-options', *det_options(str(tmp_path)))
    assert res.returncode != 0
    assert str(coco / 'train2017') in res.stderr
