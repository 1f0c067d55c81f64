from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.text.tiny_bert import write_tiny_bert


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT model folder with its tokenizer."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
