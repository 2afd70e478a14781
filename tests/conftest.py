import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an accidental Hub call fails fast instead of hanging
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "real: uses the real Gemma 3 270M (slower, a few chosen tests)")


@pytest.fixture(scope="session")
def real_ckpt():
    """The embedded 270M checkpoint dir (built into the cache on first use)."""
    import model
    return model.resolve(model.EMBEDDED)


@pytest.fixture(scope="session")
def real_tokenizer(real_ckpt):
    import model
    return model.load_tokenizer(real_ckpt)
