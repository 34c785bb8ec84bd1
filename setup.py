from setuptools import find_packages, setup


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def requirements():
    # torch/torchvision are pinned exactly for the set-up script; a user's
    # own environment brings its torch (>= the floor, and mmcv 2.1.0 built
    # for it).
    skip = ('torch', 'torchvision', 'setuptools')
    with open('requirements/runtime.txt') as f:
        lines = [ln.split('#')[0].strip() for ln in f]
    return [
        ln for ln in lines
        if ln and not ln.replace('=', ' ').replace('<', ' ').replace(
            '>', ' ').split()[0] in skip
    ] + ['mmcv==2.1.0', torch_requirement()]


def torch_requirement():
    # the floor `import mmkd` checks (mmkd/utils/compat.py; no torch needed
    # to read it)
    compat = {}
    with open('mmkd/utils/compat.py') as f:
        exec(f.read(), compat)
    return compat['TORCH_REQUIREMENT']


version = {}
with open('mmkd/version.py') as f:
    exec(f.read(), version)

setup(
    name='mmkd',
    version=version['__version__'],
    description='Knowledge distillation (vanilla KD + deep supervision) for '
    'MMDetection, MMSegmentation and timm',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.10',
    install_requires=requirements(),
    license='Apache License 2.0',
    zip_safe=False)
