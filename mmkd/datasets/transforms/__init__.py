from .formatting import PackClsInputs

__all__ = ['PackClsInputs']
