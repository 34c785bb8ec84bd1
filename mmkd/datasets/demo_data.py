"""Deterministic synthetic demo datasets: COCO, ADE20K and ImageNet layouts.

Six shape classes come in visually similar pairs (circle / ellipse, square /
rectangle, pentagon / hexagon) on cluttered backgrounds, so a teacher's soft
predictions carry information; colour never encodes the class. Each sample
has its own RNG, ``default_rng([seed, split_id, index])`` (ImageNet:
``[seed, split_id, class, index]``), so output is byte-identical across runs
and independent of order and of the requested counts.

Each dataset is built in ``<root>/<name>.tmp-<pid>`` and renamed into place
when complete, with a ``.complete`` marker holding the generation parameters;
a later call with the same parameters reuses it.
"""
from __future__ import annotations

import colorsys
import json
import os
import os.path as osp
import shutil
import time
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

FORMAT_VERSION = 2
SHAPE_CLASSES = ('circle', 'ellipse', 'square', 'rectangle', 'pentagon',
                 'hexagon')
SEG_CLASSES = ('background', ) + SHAPE_CLASSES
SEG_PALETTE = ((120, 120, 120), (230, 25, 75), (245, 130, 48), (60, 180, 75),
               (0, 130, 200), (145, 30, 180), (240, 50, 230))
_SPLIT_IDS = {'coco/train': 0, 'coco/val': 1, 'ade/train': 2, 'ade/val': 3,
              'imagenet/train': 4, 'imagenet/val': 5}


def _ngon(n: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1) * 0.5


# Unit outlines (extent 1) per class; curves are 48-gons.
_BOX = np.array([[-.5, -.5], [.5, -.5], [.5, .5], [-.5, .5]])
_UNIT = (_ngon(48), _ngon(48), _BOX, _BOX, _ngon(5), _ngon(6))


def shape_polygon(k: int, centre: Sequence[float], size: float, angle: float,
                  aspect: float = 1.5) -> np.ndarray:
    """Vertices (N, 2) of shape class ``k`` (index into SHAPE_CLASSES).

    Args:
        k (int): Class index.
        centre (Sequence[float]): Centre (x, y) in pixels.
        size (float): Major extent in pixels (a square's side is 0.85 of it).
        angle (float): Rotation in radians.
        aspect (float): Major/minor ratio of ellipses and rectangles.
            Defaults to 1.5.
    """
    sy = 1. / aspect if k in (1, 3) else 1.
    pts = _UNIT[k] * np.array([1., sy]) * size * (.85 if k == 2 else 1.)
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + np.asarray(centre, float)


#: hue (degrees) of each shape class with ``class_hues``: the two classes of
#: a similar pair share most of a hue band, so colour tells the pair and
#: shape the member
CLASS_HUES = (0., 10., 120., 130., 240., 250.)


def class_colour(k: int, rng: np.random.Generator) -> tuple:
    """A saturated colour in the hue band of class ``k`` (+-15 degrees)."""
    h = (CLASS_HUES[k] + rng.uniform(-15, 15)) % 360 / 360
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(.55, 1), rng.uniform(.55, 1))
    return int(r * 255), int(g * 255), int(b * 255)


def draw_shape(img: Image.Image, k: int, centre: Sequence[float], size: float,
               angle: float, rng: np.random.Generator,
               aspect: float = 1.5, fill: Optional[tuple] = None) -> np.ndarray:
    """Draw shape ``k`` in a random colour contrasting with what lies below,
    sometimes with a random outline; returns its polygon vertices (N, 2).

    Args:
        img (Image.Image): RGB image, drawn on in place.
        k (int): Class index into SHAPE_CLASSES.
        centre (Sequence[float]): Centre (x, y) in pixels.
        size (float): Major extent in pixels.
        angle (float): Rotation in radians.
        rng (np.random.Generator): Source of colours.
        aspect (float): Major/minor ratio. Defaults to 1.5.
        fill (tuple, optional): RGB fill. Defaults to None (random).
    """
    pts = shape_polygon(k, centre, size, angle, aspect)
    box = np.r_[np.floor(pts.min(0)), np.ceil(pts.max(0)) + 1].astype(int)
    below = np.asarray(img.crop(tuple(box.tolist())), float)
    below = below.reshape(-1, 3).mean(0)
    cand = rng.integers(0, 256, (8, 3))
    dist = np.linalg.norm(cand - below, axis=1)  # first one far enough
    if fill is None:
        fill = cand[int(np.argmax(dist > 90)) if (dist > 90).any()
                    else int(dist.argmax())]
    fill = np.asarray(fill)
    outline = tuple(rng.integers(0, 256, 3).tolist())
    ImageDraw.Draw(img).polygon(
        [tuple(p) for p in pts.tolist()], fill=tuple(fill.tolist()),
        outline=outline if rng.random() < 0.35 else None,
        width=int(rng.integers(1, 3)))
    return pts


def make_background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Gradient or low-frequency noise, plus thin lines and small specks.

    Args:
        rng (np.random.Generator): Source of randomness.
        w (int): Width in pixels.
        h (int): Height in pixels.
    """
    if rng.random() < 0.5:  # linear gradient between two colours
        c0, c1 = rng.integers(30, 226, (2, 3))
        d = rng.normal(size=2)
        yy, xx = np.mgrid[0:h, 0:w]
        t = xx * d[0] + yy * d[1]
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
        img = Image.fromarray((c0 + t[..., None] * (c1 - c0)).astype(np.uint8))
    else:  # bicubic-upsampled coarse random grid
        g = rng.integers(30, 226, (*rng.integers(2, 6, 2), 3)).astype(np.uint8)
        img = Image.fromarray(g).resize((w, h), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    area = w * h / 4096  # clutter grows with image area
    for _ in range(int(rng.integers(2, 5) + 1.5 * area)):
        x0, y0, x1, y1 = rng.uniform(0, [w, h, w, h]).tolist()
        draw.line([(x0, y0), (x1, y1)], width=int(rng.integers(1, 3)),
                  fill=tuple(rng.integers(0, 256, 3).tolist()))
    for _ in range(int(rng.integers(2, 4) + 1.5 * area)):
        x, y, r = rng.uniform([0, 0, 1], [w, h, 4]).tolist()
        draw.ellipse([x - r, y - r, x + r, y + r],
                     fill=tuple(rng.integers(0, 256, 3).tolist()))
    return img


def render_scene(rng: np.random.Generator, w: int, h: int,
                 objs: list[tuple], muted: float = 0.0,
                 class_hues: bool = False
                 ) -> tuple[Image.Image, list[np.ndarray]]:
    """Background, then ``objs`` ``(k, centre, size, angle, aspect)`` in
    order, then per-pixel noise. Returns the image and the polygons.

    ``muted`` in [0, 1] blends the background towards its own grey level,
    so that coloured objects stand out from greyish "stuff";
    ``class_hues`` fills each shape with a colour of its class's hue band
    (:data:`CLASS_HUES`) instead of a random one."""
    img = make_background(rng, w, h)
    if muted:
        img = Image.blend(img, img.convert('L').convert('RGB'), muted)
    polys = [
        draw_shape(img, k, c, s, a, rng, asp,
                   class_colour(k, rng) if class_hues else None)
        for k, c, s, a, asp in objs
    ]
    arr = np.asarray(img, np.float32)
    arr += rng.normal(0, rng.uniform(3, 8), arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), polys


def _layout(rng: np.random.Generator, w: int, h: int, n: int,
            size_range: tuple[float, float]) -> list[tuple]:
    """Up to ``n`` random objects inside the image whose boxes have IoU < 0.3
    and cover less than half of the smaller box."""
    objs: list[tuple] = []
    boxes: list[np.ndarray] = []
    for _ in range(20 * n):
        if len(objs) == n:
            break
        k, size = int(rng.integers(6)), rng.uniform(*size_range)
        angle, aspect = rng.uniform(0, 2 * np.pi), rng.uniform(1.35, 1.7)
        pts = shape_polygon(k, (0, 0), size, angle, aspect)
        lo, hi = pts.min(0), pts.max(0)
        c = rng.uniform(-lo, np.array([w, h]) - hi)
        box = np.concatenate([lo + c, hi + c])
        a0 = (hi - lo).prod()
        for b in boxes:
            wh = np.minimum(box[2:], b[2:]) - np.maximum(box[:2], b[:2])
            inter, a1 = np.clip(wh, 0, None).prod(), (b[2:] - b[:2]).prod()
            if inter / (a0 + a1 - inter) >= 0.3 or inter / min(a0, a1) >= .5:
                break
        else:
            objs.append((k, c, size, angle, aspect))
            boxes.append(box)
    return objs


def _generate(root: str, name: str, params: dict,
              body: Callable[[str], int]) -> str:
    """Run ``body(tmp_dir)`` unless ``<root>/<name>`` has a matching marker,
    then swap the finished folder into place."""
    dst = osp.join(root, name)
    marker = json.dumps(dict(params, dataset=name, format=FORMAT_VERSION),
                        sort_keys=True)
    try:
        with open(osp.join(dst, '.complete')) as f:
            if f.read() == marker:
                print(f'[demo data] {name}: reusing {dst}')
                return dst
    except OSError:
        pass
    t0, tmp = time.time(), f'{dst}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        count = body(tmp)
        with open(osp.join(tmp, '.complete'), 'w') as f:
            f.write(marker)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if osp.lexists(dst):  # keep the window without a dataset minimal
        old = f'{dst}.old-{os.getpid()}'
        os.rename(dst, old)
        os.rename(tmp, dst)
        shutil.rmtree(old)
    else:
        os.rename(tmp, dst)
    print(f'[demo data] {name}: {count} images in {time.time() - t0:.1f}s '
          f'-> {dst}')
    return dst


def _coco_split(out: str, split: str, num: int, seed: int, muted: float,
                class_hues: bool) -> None:
    images, anns = [], []
    os.makedirs(osp.join(out, f'{split}2017'))
    for i in range(num):
        rng = np.random.default_rng([seed, _SPLIT_IDS[f'coco/{split}'], i])
        w, h = rng.integers(192, 257, 2).tolist()
        objs = _layout(rng, w, h, int(rng.integers(1, 6)), (24, 96))
        img, polys = render_scene(rng, w, h, objs, muted, class_hues)
        fname = f'{i + 1:012d}.jpg'
        img.save(osp.join(out, f'{split}2017', fname), quality=90)
        images.append(dict(id=i + 1, file_name=fname, width=w, height=h,
                           license=1))
        for (k, *_), pts in zip(objs, polys):
            pts = np.clip(pts, 0, [w, h])
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            x, y = pts.T
            area = abs(x @ np.roll(y, 1) - y @ np.roll(x, 1)) / 2  # shoelace
            anns.append(dict(
                id=len(anns) + 1, image_id=i + 1, category_id=k + 1,
                bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                area=round(float(area), 2), iscrowd=0,
                segmentation=[np.round(pts.ravel(), 2).tolist()]))
    coco = dict(
        info=dict(description='mmkd synthetic shapes demo', version='1.0',
                  year=2024, contributor='mmkd', date_created='2024-01-01'),
        licenses=[dict(id=1, name='CC0-1.0', url='')], images=images,
        annotations=anns,
        categories=[dict(id=k + 1, name=n, supercategory='shape')
                    for k, n in enumerate(SHAPE_CLASSES)])
    with open(osp.join(out, f'annotations/instances_{split}2017.json'),
              'w') as f:
        json.dump(coco, f)


def make_coco_demo(root: str, num_train: int = 400, num_val: int = 200,
                   seed: int = 0, muted: float = 0.8,
                   class_hues: bool = True) -> str:
    """COCO-format detection data in ``<root>/coco``; returns that folder.

    Args:
        root (str): Parent folder.
        num_train (int): Training images. Defaults to 400.
        num_val (int): Validation images. Defaults to 200.
        seed (int): Base seed. Defaults to 0.
        muted (float): How far backgrounds are blended towards grey (see
            :func:`make_ade_demo`). Defaults to 0.8.
        class_hues (bool): Fill shapes with their class's hue band (see
            :func:`make_ade_demo`). Defaults to True.
    """
    def body(out: str) -> int:
        os.makedirs(osp.join(out, 'annotations'))
        _coco_split(out, 'train', num_train, seed, muted, class_hues)
        _coco_split(out, 'val', num_val, seed, muted, class_hues)
        return num_train + num_val
    return _generate(root, 'coco', dict(num_train=num_train, num_val=num_val,
                                        seed=seed, muted=muted,
                                        class_hues=class_hues), body)


def make_ade_demo(root: str, num_train: int = 300, num_val: int = 120,
                  size: int = 128, seed: int = 0, muted: float = 0.8,
                  class_hues: bool = True) -> str:
    """ADE20K-layout segmentation data in ``<root>/ade``; returns that folder.

    Label maps: 0 = unlabelled (incl. a 2 px band on shape boundaries),
    1 = background, 2..7 = shapes; use ``reduce_zero_label=True``.

    Args:
        root (str): Parent folder.
        num_train (int): Training images. Defaults to 300.
        num_val (int): Validation images. Defaults to 120.
        size (int): Image side in pixels. Defaults to 128.
        seed (int): Base seed. Defaults to 0.
        muted (float): How far backgrounds are blended towards grey (objects
            are "things" in colour on greyish "stuff", which a segmentor
            trained from scratch for minutes can separate; telling the shapes
            apart stays the hard part). Defaults to 0.8.
        class_hues (bool): Fill shapes with their class's hue band
            (:data:`CLASS_HUES`; similar pairs get neighbouring bands), a
            cue a small model trained for minutes can pick up, while colour
            augmentation keeps the pairs confusable. Defaults to True.
    """
    def body(out: str) -> int:
        for split, sub, num in (('train', 'training', num_train),
                                ('val', 'validation', num_val)):
            os.makedirs(osp.join(out, 'images', sub))
            os.makedirs(osp.join(out, 'annotations', sub))
            for i in range(num):
                rng = np.random.default_rng(
                    [seed, _SPLIT_IDS[f'ade/{split}'], i])
                objs = _layout(rng, size, size, int(rng.integers(2, 6)),
                               (20, 60))
                img, polys = render_scene(rng, size, size, objs, muted,
                                           class_hues)
                label = Image.new('L', (size, size), 1)
                draw = ImageDraw.Draw(label)
                for (k, *_), pts in zip(objs, polys):
                    xy = [tuple(p) for p in pts.tolist()]
                    draw.polygon(xy, fill=k + 2)
                    draw.line(xy + xy[:1], fill=0, width=2, joint='curve')
                stem = f'ADE_{split}_{i + 1:08d}'
                img.save(osp.join(out, 'images', sub, stem + '.jpg'),
                         quality=90)
                label.save(osp.join(out, 'annotations', sub, stem + '.png'))
        return num_train + num_val
    return _generate(root, 'ade', dict(num_train=num_train, num_val=num_val,
                                       size=size, seed=seed, muted=muted,
                                       class_hues=class_hues), body)


def make_imagenet_demo(root: str, num_train_per_class: int = 100,
                       num_val_per_class: int = 100, size: int = 64,
                       seed: int = 0, muted: float = 0.8,
                       class_hues: bool = True) -> str:
    """ImageNet-folder classification data in ``<root>/imagenet`` with
    ``meta/{train,val}.txt`` (labels index the sorted class names); returns
    that folder.

    Args:
        root (str): Parent folder.
        num_train_per_class (int): Training images per class. Defaults to 100.
        num_val_per_class (int): Validation images per class (100: a
            top-1 on 600 images moves in steps of 0.17). Defaults to 100.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Base seed. Defaults to 0.
        muted (float): How far backgrounds are blended towards grey (see
            :func:`make_ade_demo`). Defaults to 0.8.
        class_hues (bool): Fill shapes with their class's hue band (see
            :func:`make_ade_demo`). Defaults to True.
    """
    def body(out: str) -> int:
        os.makedirs(osp.join(out, 'meta'))
        for split, num in (('train', num_train_per_class),
                           ('val', num_val_per_class)):
            lines = []
            for label, name in enumerate(sorted(SHAPE_CLASSES)):
                k = SHAPE_CLASSES.index(name)
                os.makedirs(osp.join(out, split, name))
                for i in range(num):
                    rng = np.random.default_rng(
                        [seed, _SPLIT_IDS[f'imagenet/{split}'], k, i])
                    s, angle, aspect = rng.uniform(
                        [.4 * size, 0, 1.35], [.75 * size, 2 * np.pi, 1.7])
                    pts = shape_polygon(k, (0, 0), s, angle, aspect)
                    room = np.minimum(size - np.ptp(pts, 0), 0.2 * size) / 2
                    c = size / 2 + rng.uniform(-1, 1, 2) * np.maximum(room, 0)
                    img, _ = render_scene(rng, size, size,
                                          [(k, c, s, angle, aspect)], muted,
                                          class_hues)
                    fname = f'{name}_{i + 1:05d}.JPEG'
                    img.save(osp.join(out, split, name, fname), quality=90)
                    lines.append(f'{name}/{fname} {label}\n')
            with open(osp.join(out, 'meta', f'{split}.txt'), 'w') as f:
                f.writelines(lines)
        return len(SHAPE_CLASSES) * (num_train_per_class + num_val_per_class)
    return _generate(root, 'imagenet', dict(
        num_train_per_class=num_train_per_class,
        num_val_per_class=num_val_per_class, size=size, seed=seed,
        muted=muted, class_hues=class_hues), body)


def make_all_demo_data(root: str, seed: int = 0, scale: float = 1.0,
                       only: Optional[Sequence[str]] = None) -> dict:
    """Generate (or reuse) the demo datasets under ``root``.

    Args:
        root (str): Parent folder.
        seed (int): Base seed. Defaults to 0.
        scale (float): Multiplier for all counts (at least 1 per split and
            class). Defaults to 1.0.
        only (Sequence[str], optional): Subset of 'coco', 'ade', 'imagenet'.
            Defaults to None (all three).

    Returns:
        dict: Dataset name -> dataset folder.
    """
    def n(v: int) -> int:
        return max(1, int(round(v * scale)))

    makers = dict(
        # validation sets large enough that the metric's own sampling noise
        # stays below the seed-to-seed spread of the study
        coco=lambda: make_coco_demo(root, n(400), n(200), seed=seed),
        ade=lambda: make_ade_demo(root, n(300), n(120), seed=seed),
        imagenet=lambda: make_imagenet_demo(root, n(100), n(100), seed=seed))
    os.makedirs(root, exist_ok=True)
    return {k: f() for k, f in makers.items() if only is None or k in only}
