from .cls_data_preprocessor import ClsDataPreprocessor

__all__ = ['ClsDataPreprocessor']
