"""mmkd's registries: children of mmengine's root registries, scope ``mmkd``.

Because they are children of mmengine's registries, a config whose default
scope is ``mmdet`` or ``mmseg`` reaches mmkd's modules as ``type='mmkd.Xxx'``
once ``custom_imports = dict(imports=['mmkd'])`` has imported the package, and
an mmkd-scoped config reaches mmdet's as ``type='mmdet.Xxx'``. ``locations``
lets mmengine import the defining modules on demand (``'mmkd'`` where the
modules of a registry are spread over the package).
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=['mmkd.models', 'mmkd.losses'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['mmkd'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['mmkd.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['mmkd.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['mmkd.datasets'])
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['mmkd'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mmkd.engine'])
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['mmkd'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['mmkd'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['mmkd'])
# mmkd registers no initialiser of its own: the child only lets mmkd-scoped
# modules' init_cfg (the classifier heads' TruncNormal / Kaiming) resolve
# mmengine's without a fallback warning
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS)
