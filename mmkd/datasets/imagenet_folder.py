"""ImageNet-layout folder dataset: ``<data_root>/<prefix>/<class>/<image>``."""
import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset

from mmkd.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.ppm', '.tif')


@DATASETS.register_module()
class ImageNetFolder(BaseDataset):
    """Classification images stored one folder per class, as ImageNet is.

    Classes are the sorted sub-folder names unless ``metainfo['classes']``
    names them. With ``ann_file`` (ImageNet's ``meta/train.txt`` format: one
    ``<relative path> <label>`` per line) the listed files are used instead of
    scanning the folders.

    Args:
        data_root (str): Root of the dataset. Defaults to ``''``.
        data_prefix (dict): ``dict(img_path=<split folder>)`` relative to
            ``data_root``. Defaults to ``dict(img_path='')``.
        ann_file (str): Optional list file relative to ``data_root``.
            Defaults to ``''``.
        metainfo (dict, optional): May give ``classes``. Defaults to None.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: dict = dict(img_path=''),
                 ann_file: str = '',
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix,
            ann_file=ann_file,
            metainfo=metainfo,
            **kwargs)

    def _class_names(self, folder: str) -> Sequence[str]:
        classes = self._metainfo.get('classes')
        if classes:
            return tuple(classes)
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'ImageNetFolder: image folder "{folder}" does not exist')
        classes = tuple(
            sorted(d.name for d in os.scandir(folder) if d.is_dir()))
        if not classes:
            raise ValueError(
                f'ImageNetFolder: no class sub-folders in "{folder}"')
        return classes

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img_path', '') or self.data_root
        classes = self._class_names(folder)
        self._metainfo['classes'] = classes
        if self.ann_file:
            data_list = []
            with open(self.ann_file) as f:
                for line_no, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    parts = line.rsplit(maxsplit=1)
                    if len(parts) != 2 or not parts[1].isdigit():
                        raise ValueError(f'{self.ann_file}:{line_no}: expected '
                                         f'"<path> <label>", got {line!r}')
                    label = int(parts[1])
                    if label >= len(classes):
                        raise ValueError(
                            f'{self.ann_file}:{line_no}: label {label} but '
                            f'only {len(classes)} classes')
                    data_list.append(
                        dict(
                            img_path=osp.join(folder, parts[0]),
                            gt_label=label))
            return data_list
        data_list = []
        for label, name in enumerate(classes):
            class_dir = osp.join(folder, name)
            if not osp.isdir(class_dir):
                raise FileNotFoundError(
                    f'ImageNetFolder: class folder "{class_dir}" does not '
                    'exist')
            for entry in sorted(os.scandir(class_dir), key=lambda e: e.name):
                if entry.name.lower().endswith(IMG_EXTENSIONS):
                    data_list.append(dict(img_path=entry.path, gt_label=label))
        if not data_list:
            raise ValueError(f'ImageNetFolder: no images under "{folder}"')
        return data_list
