import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an accidental Hub call fails fast instead of hanging
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "real: uses a real model (Gemma 3 270M, SmolLM2 135M): slower, a few chosen tests")


@pytest.fixture(scope="session")
def real_ckpt():
    """The embedded 270M checkpoint dir (built into the cache on first use)."""
    import checkpoint
    return checkpoint.resolve("gemma-3-270m")


@pytest.fixture(scope="session")
def real_tokenizer(real_ckpt):
    import checkpoint
    return checkpoint.load_tokenizer(real_ckpt)


# Gemma 3's instruction-tuned chat template, written from its rules: bos, a system message folded
# into the first user turn, roles alternate, assistant written as "model", contents trimmed.
GEMMA_IT = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('roles must alternate') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + message['content'] | trim + "
    "'<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")


def tiny_tokenizer(family="gemma3", chat_template=None):
    """A byte-level tokenizer (every text encodes, one token per byte) with the special tokens of a
    family's markup, for tiny random models: 256 byte tokens, then the specials."""
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import ByteLevel

    import data
    alphabet = ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    hf = Tokenizer(BPE(vocab=vocab, merges=[]))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    m = data.MARKUPS[{"gemma3": "gemma3", "qwen3": "chatml", "llama": "llama3"}[family]]
    specials = ["<pad>"] + [s for s in (m.bos, m.open.split("{")[0], m.open.split("}")[1].strip("\n"), m.close, m.eos) if s]
    hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return data.Tokenizer(hf, chat_template=chat_template, name=f"tiny {family} tokenizer")
