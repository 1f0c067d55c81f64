"""Text helpers for ``text_classification``: tokenisation, identity terms, perturbations.

Nothing here imports torch or transformers at import time; the functions that need them import
them inside.
"""

__all__: list[str] = []
