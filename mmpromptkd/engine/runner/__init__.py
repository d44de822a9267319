from .safe_loading_runner import SafeLoadingRunner

__all__ = ['SafeLoadingRunner']
