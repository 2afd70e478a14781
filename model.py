"""One decoder for the paper's three model families, computing exactly what transformers computes:
Gemma 3 (Gemma3ForCausalLM), Qwen3 (Qwen3ForCausalLM) and Llama 3.x (LlamaForCausalLM).

The families differ in a few switches, which Config sets from `family` (checkpoint.py reads them
from config.json):
                    Gemma 3                            Qwen3                 Llama 3.x
  RMSNorm           x * (1 + w) in fp32, then cast     cast, then w * x      cast, then w * x
  sandwich norms    yes: norm after attention and MLP  no                    no
  QK-norm           yes (before RoPE)                  yes                   no
  MLP               GeGLU, tanh GELU                   SwiGLU                SwiGLU
  embedding         * sqrt(hidden), rounded to dtype   as is                 as is
  attention scale   query_pre_attn_scalar ** -0.5      head_dim ** -0.5      head_dim ** -0.5
  layers            5 sliding-window : 1 global        global                global
  RoPE              local 10k, global 1M (linear x8)   1M                    500k, llama3 scaling
  lm_head           tied                               tied or untied        tied (3.2) or untied (3.1)
Attention is GQA; the sliding window sees exactly `sliding_window` keys, self included.

forward() returns the final-normed hidden states, only at the positions a caller selects, and
the caller makes logits of them (logits) where it needs them, or asks forward for the summed
loss of given targets (the lm_head fused with the cross-entropy): with a 262k vocabulary the
logits are the largest cost of training and scoring. Parameter names are transformers' names without the
leading "model." (lm_head.weight as is), so checkpoint I/O is a prefix strip / prefix add.
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}  # float16: no fast CPU kernels

# What each family switches on. Fields of Config, filled in from `family`.
FAMILIES = {
    "gemma3": dict(gemma_norm=True, sandwich_norms=True, qk_norm=True, act="gelu_tanh", embed_scale=True),
    "qwen3": dict(gemma_norm=False, sandwich_norms=False, qk_norm=True, act="silu", embed_scale=False),
    "llama": dict(gemma_norm=False, sandwich_norms=False, qk_norm=False, act="silu", embed_scale=False),
}


@dataclass
class Config:
    family: str = "gemma3"
    vocab_size: int = 262144
    hidden_size: int = 640
    intermediate_size: int = 2048
    num_layers: int = 18
    num_heads: int = 4
    num_kv_heads: int = 1
    head_dim: int = 256
    attn_scale: float = 0.0                 # 0: head_dim ** -0.5 (Gemma: query_pre_attn_scalar ** -0.5)
    sliding_window: int = 512
    layer_types: list = field(default_factory=list)  # "sliding_attention" | "full_attention" per layer
    rope_theta: float = 1e6                 # global layers
    rope_local_theta: float = 1e4           # sliding-window layers
    rope_scaling: dict | None = None        # global layers: {"rope_type": "linear" | "llama3", ...}
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    tie_embeddings: bool = True
    dtype: str = "bfloat16"                 # the checkpoint's storage dtype
    # set from FAMILIES[family]
    gemma_norm: bool = True
    sandwich_norms: bool = True
    qk_norm: bool = True
    act: str = "gelu_tanh"
    embed_scale: bool = True

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}: one of {', '.join(FAMILIES)}")
        for k, v in FAMILIES[self.family].items():
            setattr(self, k, v)
        if not self.layer_types:  # Gemma 3: 5 local : 1 global, starting with local; others global
            self.layer_types = ["full_attention" if self.family != "gemma3" or (i + 1) % 6 == 0
                                else "sliding_attention" for i in range(self.num_layers)]
        if len(self.layer_types) != self.num_layers:
            raise ValueError(f"{len(self.layer_types)} layer_types for {self.num_layers} layers")
        if not self.attn_scale:
            self.attn_scale = self.head_dim ** -0.5


# --- the network -------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps, gemma):
        super().__init__()
        self.eps, self.gemma = eps, gemma
        self.weight = nn.Parameter(torch.zeros(dim) if gemma else torch.ones(dim))  # Gemma stores w of (1 + w)

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.gemma:  # scale in fp32, then cast
            return (y * (1.0 + self.weight.float())).type_as(x)
        return self.weight * y.type_as(x)  # cast, then scale (in the weight's dtype if wider)


def rope_inv_freq(head_dim, theta, scaling, device):
    """Inverse frequencies of the split-half RoPE, with linear or llama3 scaling, in fp32."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))
    kind = (scaling or {}).get("rope_type", "default")
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":  # long wavelengths slowed by `factor`, short kept, a smooth ramp between
        factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        return torch.where(medium, smoothed, scaled)
    return inv


def rope_cos_sin(pos, inv_freq, dtype):
    """cos/sin [B, 1, T, head_dim] for positions pos [B, T], computed in fp32 (as transformers),
    then cast to the activation dtype."""
    freqs = pos.float()[..., None] * inv_freq
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
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
        if c.qk_norm:
            self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps, c.gemma_norm)
            self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps, c.gemma_norm)

    def forward(self, x, rope, mask, cache=None):
        B, T, _ = x.shape
        c = self.c
        q = self.q_proj(x).view(B, T, c.num_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, c.num_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, c.num_kv_heads, c.head_dim).transpose(1, 2)
        if c.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # positions [cache.shared, now]
            # keys older than the window are masked anyway: don't compute them
            first = max(0, cache.first_query - c.sliding_window + 1) if self.is_local else 0
            mask, own = mask[..., first:], max(0, first - cache.shared)
            k, v = k[:, :, own:], v[:, :, own:]
            if cache.shared:  # a branched cache: the shared prefix, then the row's own keys
                y = shared_prefix_attention(q, cache.prefix_k[self.layer][:, :, first:],
                                            cache.prefix_v[self.layer][:, :, first:], k, v, mask, c.attn_scale)
                return self.o_proj(y.transpose(1, 2).reshape(B, T, c.num_heads * c.head_dim))
        if q.device.type == "cpu" and torch.bfloat16 in (q.dtype, torch.get_autocast_dtype("cpu") if
                                                         torch.is_autocast_enabled("cpu") else None):
            # bf16 on CPU: ~1.8x faster than the SDPA kernel there, forward + backward
            y = eager_attention(q, k, v, mask, c.attn_scale)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=c.attn_scale,
                                               enable_gqa=c.num_kv_heads != c.num_heads)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, c.num_heads * c.head_dim))


def eager_attention(q, k, v, mask, scale):
    """softmax(q k^T * scale) v with GQA, as transformers' eager attention computes it (matmuls in the
    activation dtype, the softmax in fp32): the query heads of one kv head are stacked into one
    matmul against it. mask [B or 1, 1, T, S] bool (True = attend), or None for causal."""
    B, H, T, hd = q.shape
    kv = k.shape[1]
    dtype = torch.get_autocast_dtype(q.device.type) if torch.is_autocast_enabled(q.device.type) else q.dtype
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)  # (RoPE in fp32 leaves q, k wider than v)
    if mask is None:
        mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=q.device).tril(k.shape[2] - T)
    qg = q.reshape(B, kv, H // kv * T, hd)
    s = (qg @ k.transpose(2, 3)).view(B, H, T, -1) * scale
    w = s.masked_fill_(~mask, float("-inf")).softmax(-1, dtype=torch.float32).to(dtype)
    return (w.view(B, kv, H // kv * T, -1) @ v).view(B, H, T, hd)


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
        self.act = gelu_tanh if c.act == "gelu_tanh" else F.silu

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class Block(nn.Module):
    def __init__(self, c: Config, layer: int):
        super().__init__()
        self.sandwich = c.sandwich_norms
        norm = lambda: RMSNorm(c.hidden_size, c.rms_norm_eps, c.gemma_norm)  # noqa: E731
        self.input_layernorm = norm()
        self.self_attn = Attention(c, layer)
        self.post_attention_layernorm = norm()  # Gemma: after attention; Llama/Qwen: before the MLP
        self.mlp = MLP(c)
        if self.sandwich:
            self.pre_feedforward_layernorm = norm()
            self.post_feedforward_layernorm = norm()

    def forward(self, x, rope, mask, cache=None):
        if self.sandwich:
            x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope, mask, cache))
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Transformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(Block(c, i) for i in range(c.num_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps, c.gemma_norm)
        if not c.tie_embeddings:
            self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.activation_checkpointing = False
        # the embedding and lm_head weights' gradients added into .grad in place (see inplace_grads)
        self.inplace_grads = False
        self.head_grad_rows = None  # with inplace_grads: the only lm_head rows that get a gradient

    @property
    def head_weight(self):
        return self.embed_tokens.weight if self.config.tie_embeddings else self.lm_head.weight

    def forward(self, idx, pos=None, seq=None, cache=None, select=None, targets=None, tree=None):
        """idx [B, T] token ids -> final-normed hidden states [B, T, H], or [N, H] at `select`.

        select [B, T] bool: only these positions go through the final norm and come back.
        targets [N] (with select): return the summed -log p of these next tokens instead, through
        the fused lm_head + loss (inside forward, so FSDP has the head's weight gathered).
        pos [B, T]: positions (default 0..T-1, or continuing the cache). seq [B, T]: sequence ids
        of packed rows; a token attends only to earlier tokens with the same id, so several
        sequences share a row exactly as if each ran alone (positions restart at 0 for each).
        cache: a KVCache; idx is appended after what it holds. tree [T, cache.length + T] bool (with
        a cache): which cache slots each of this call's tokens sees (default: all earlier ones, then
        the causal order), for scoring trees of continuations in one pass; pos then gives each
        token's position.
        """
        c = self.config
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if pos is None:
            pos = torch.arange(start, start + T, device=idx.device).expand(B, T)
        x = embed(idx, self.embed_tokens.weight, self.inplace_grads and self.training)
        if c.embed_scale:  # sqrt(H) rounded to the weight dtype first (bf16: sqrt(3840) = 62.0)
            x = x * torch.tensor(c.hidden_size ** 0.5, dtype=self.embed_tokens.weight.dtype)
        # cos/sin take the embedding's dtype, as in transformers (fp32 master weights keep fp32 RoPE)
        dev = idx.device
        ropes = {"full_attention": rope_cos_sin(pos, rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling, dev),
                                                x.dtype)}
        if "sliding_attention" in c.layer_types:
            ropes["sliding_attention"] = rope_cos_sin(pos, rope_inv_freq(c.head_dim, c.rope_local_theta, None, dev),
                                                      x.dtype)
        masks = attention_masks(c, pos, seq, start, T, cache, tree)
        if cache is not None:  # keys before the earliest query's window are never seen: not computed
            cache.first_query = int(pos.min())
        for i, block in enumerate(self.layers):
            t = c.layer_types[i]
            if self.activation_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, ropes[t], masks[t], use_reentrant=False)
            else:
                x = block(x, ropes[t], masks[t], cache)
        if cache is not None:
            cache.length += T
        h = self.norm(x if select is None else x[select])
        return h if targets is None else linear_nll(h, self.head_weight, targets, self.inplace_grads,
                                                    self.head_grad_rows)

    def logits(self, h):
        return F.linear(h, self.head_weight)


def attention_masks(c: Config, pos, seq, start, T, cache, tree=None):
    """Boolean masks (True = attend) per layer type; None means plain causal (the fast SDPA path)."""
    W = c.sliding_window if "sliding_attention" in c.layer_types else 0
    if cache is not None:  # this call's tokens (positions pos[0], shared by all rows) over cache slots:
        dev = pos.device   # the earlier ones (slot = position), then this call's own
        full = tree if tree is not None else torch.cat([torch.ones(T, start, dtype=torch.bool, device=dev),
                                                        torch.ones(T, T, dtype=torch.bool, device=dev).tril()], 1)
        q, k = pos[0], torch.cat([torch.arange(start, device=dev), pos[0]])
        return {"full_attention": full, "sliding_attention": full & (q[:, None] - k[None, :] < W)}
    if seq is None and (not W or T <= W):
        return {"full_attention": None, "sliding_attention": None}
    i = torch.arange(T, device=pos.device)
    full = (i[:, None] >= i[None, :])[None]  # [1, T, T]
    if seq is not None:
        full = full & (seq[:, :, None] == seq[:, None, :])
    masks = {"full_attention": None if seq is None else full[:, None]}
    if W:  # within one sequence positions are contiguous, so the position gap is the token distance
        masks["sliding_attention"] = (full & (pos[:, :, None] - pos[:, None, :] < W))[:, None]
    return masks


# --- the fused lm_head + loss ----------------------------------------------------------------------

def inplace_grads(model: "Transformer", on=True, head_rows=None):
    """Make the backward add the embedding's and the lm_head's gradients into their .grad in place.

    They are the two largest tensors of a small model with a big vocabulary (2 x [262144, 640] fp32
    for the tied 270M). Through autograd, each micro-step would allocate a dense gradient for each
    use (zero-filled, then summed, then added to .grad): on CPU fresh GB-sized tensors cost several
    times the arithmetic on them. In place, the lookup's backward adds only the rows it used
    (index_add_), and the lm_head's gradient goes straight into .grad. These weights then get no
    gradient through autograd, so whoever reduces gradients across ranks must reduce theirs
    (train.py does, for DDP; FSDP shards them, so it leaves this off). head_rows: only these rows of
    the lm_head get a gradient (the others none at all), for a head frozen but for a few rows, where
    the full [V, N] x [N, H] product (2*V*H FLOPs per loss token: for the 270M at 2 rows of 512,
    ~1/7 of the step's FLOPs) would be thrown away. Returns the weights."""
    model.inplace_grads, model.head_grad_rows = on, head_rows if on else None
    return list({id(w): w for w in (model.embed_tokens.weight, model.head_weight)}.values())


def embed(idx, w, inplace):
    return _Embed.apply(idx, w) if inplace and torch.is_grad_enabled() and w.requires_grad else F.embedding(idx, w)


def add_grad(w, g, rows=None):
    """w.grad += g (or w.grad[rows] += g), in place (created at the first use). A g in a narrower
    dtype is first copied into a reused buffer of w's dtype: on CPU a mixed-dtype add_ is several
    times slower than the copy and a same-dtype add together."""
    if w.grad is None:
        w.grad = torch.zeros_like(w)
    if g.dtype != w.grad.dtype:
        g = _buffer(g.device, w.grad.dtype, g.shape, "widen").copy_(g)
    if rows is None:
        w.grad.add_(g)
    else:
        w.grad.index_add_(0, rows, g)


class _Embed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, idx, w):
        ctx.save_for_backward(idx)
        ctx.w = w
        return F.embedding(idx, w)

    @staticmethod
    def backward(ctx, g):
        idx, = ctx.saved_tensors
        w = ctx.w
        if w.grad is None:
            w.grad = torch.zeros_like(w)
        w.grad.index_add_(0, idx.flatten(), g.reshape(-1, g.shape[-1]).to(w.grad.dtype))
        return None, None


def linear_nll(h, w, targets, inplace=False, rows=None):
    """sum_i -log softmax(h_i @ w.T)[targets_i]: the lm_head fused with the cross-entropy.

    Same numbers as F.cross_entropy(F.linear(h, w).float(), targets, reduction="sum") (matmuls in
    the autocast dtype when autocast is on, softmax in fp32), but the [N, V] logits, their fp32
    copy and their gradient live in two buffers reused from call to call, and the gradient is
    formed in place in the forward pass: on CPU a fresh GB-sized tensor costs several times the
    arithmetic done on it (the OS zeroes every new page). With inplace, w's gradient is added into
    w.grad, and with rows only those rows of it are formed and added.
    """
    dev = h.device.type
    dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else w.dtype
    inplace = inplace and w.requires_grad
    with torch.autocast(dev, enabled=False):
        grad = torch.is_grad_enabled() and (h.requires_grad or w.requires_grad)
        return _LinearNLL.apply(h, w, targets, dtype, grad, inplace, rows if inplace else None)


_buffers = {}


def _buffer(device, dtype, shape, name=""):
    """A reusable scratch tensor of at least this size (grown when needed), viewed as `shape`."""
    n, key = math.prod(shape), (str(device), dtype, name)
    if key not in _buffers or _buffers[key].numel() < n:
        _buffers[key] = None  # free the old one first
        _buffers[key] = torch.empty(n, device=device, dtype=dtype)
    return _buffers[key][:n].view(shape)


_casts = None  # inside cast_once(): the weights' copies in a compute dtype, by (id, dtype)


@contextmanager
def cast_once():
    """Inside this block the fused lm_head casts its weight to the compute dtype once and reuses the
    copy (in a buffer reused from block to block): for the micro-steps of one optimizer step, or a
    held-out pass, where no weight changes. Outside it every call casts afresh. The scope is explicit
    because nothing on the weight tells when it changed: a fused optimizer updates it in place
    without bumping its version counter. A block inside another one keeps the outer block's copies."""
    global _casts
    if _casts is not None:
        yield
        return
    _casts = {}
    try:
        yield
    finally:
        _casts = None


def _cast(w, dtype):
    if w.dtype == dtype:
        return w.detach()
    if _casts is None:
        return w.detach().to(dtype)
    key = (id(w), dtype)
    if key not in _casts:
        _casts[key] = _buffer(w.device, dtype, w.shape, f"cast {len(_casts)}").copy_(w.detach())
    return _casts[key]


class _LinearNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, targets, dtype, grad, inplace, rows):
        N, V = len(h), len(w)
        hc, wc = h.to(dtype), _cast(w, dtype)
        logits = torch.mm(hc, wc.T, out=_buffer(h.device, dtype, (N, V)))
        p = logits if dtype == torch.float32 else _buffer(h.device, torch.float32, (N, V)).copy_(logits)
        torch.ops.aten._log_softmax.out(p, 1, False, out=p)  # in place, one fused kernel
        loss = -p.gather(1, targets[:, None]).sum()
        if grad:  # decided by the caller: inside a Function grad mode is always off
            p.exp_()                                        # softmax
            p[torch.arange(N, device=p.device), targets] -= 1  # d loss / d logits
            g = p if p is logits else logits.copy_(p)       # in the compute dtype, in the same buffer
            gw = None
            if ctx.needs_input_grad[1] and rows is not None:  # only these rows learn: form only theirs
                gw = torch.mm(g[:, rows].T, hc)
            elif ctx.needs_input_grad[1]:  # in place: into a reused buffer, added to w.grad in backward
                gw = torch.mm(g.T, hc, out=_buffer(h.device, dtype, (V, hc.shape[1]), "grad_w") if inplace else None)
            ctx.save_for_backward(torch.mm(g, wc).to(h.dtype), gw)
            ctx.w, ctx.inplace, ctx.rows = w, inplace, rows
        return loss

    @staticmethod
    def backward(ctx, grad):
        grad_h, grad_w = ctx.saved_tensors
        if grad_w is not None and ctx.inplace:
            add_grad(ctx.w, grad_w.mul_(grad), ctx.rows)
            grad_w = None
        elif grad_w is not None:
            grad_w = grad_w.to(ctx.w.dtype, copy=True).mul_(grad)
        return grad_h * grad, grad_w, None, None, None, None, None


@torch.no_grad()
def token_logprobs(model: Transformer, h, targets, chunk=128, rows=None):
    """(log p(target) float32, target == argmax) on the CPU for final hidden states h [M, H]; target n
    is scored at h[rows[n]] (default: h[n]). The logits are made chunk rows of h at a time: M x 262k
    fp32 logits at once would be the largest tensor of a scoring run."""
    rows = torch.arange(len(targets)) if rows is None else torch.as_tensor(rows)
    lp, hit = torch.zeros(len(targets)), torch.zeros(len(targets), dtype=torch.bool)
    targets = targets.cpu()
    for at in range(0, len(h), chunk):
        logits = model.logits(h[at:at + chunk])
        logp = _buffer(h.device, torch.float32, logits.shape, "logprobs").copy_(logits)
        torch.ops.aten._log_softmax.out(logp, 1, False, out=logp)  # in place: logsumexp is ~5x slower
        n = ((rows >= at) & (rows < at + chunk)).nonzero()[:, 0]
        r, t = (rows[n] - at).to(h.device), targets[n].to(h.device)
        lp[n] = logp[r, t].cpu()
        hit[n] = (logp.argmax(-1)[r] == t).cpu()
    return lp, hit


# --- the KV cache --------------------------------------------------------------------------------

class KVCache:
    """Preallocated keys/values per layer [B, kv_heads, max_len, head_dim], written at cache.length.

    All rows share one length. Prefill a prompt once, then branch() it into n rows that go on from
    it (score n candidates, sample n continuations): they read the prompt's keys/values in place.
    """

    def __init__(self, c: Config, batch: int, max_len: int, device, dtype):
        shape = (batch, c.num_kv_heads, max_len, c.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.num_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.num_layers)]
        self.length = self.first_query = 0
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
        new.length = new.shared = new.first_query = length
        new.prefix_k = [t[:1, :, :length] for t in self.k]
        new.prefix_v = [t[:1, :, :length] for t in self.v]
        new.k = [t.new_zeros((n, t.shape[1], max_new, t.shape[3])) for t in self.k]
        new.v = [t.new_zeros((n, t.shape[1], max_new, t.shape[3])) for t in self.v]
        return new

    def keep(self, rows):
        """Keep the rows `rows` (a bool mask, or indices: repeated ones duplicate a row): finished
        samples cost nothing, and a row can branch. Only the filled positions are copied."""
        used = self.length - self.shared
        self.k, self.v = [self.gather(t, rows, used) for t in self.k], [self.gather(t, rows, used) for t in self.v]

    @staticmethod
    def gather(t, rows, used):
        picked = t[rows, :, :used]
        new = t.new_empty((len(picked),) + t.shape[1:])
        new[:, :, :used] = picked
        return new


def new_cache(model: Transformer, batch: int, max_len: int) -> KVCache:
    p = model.embed_tokens.weight  # cached inference runs in the weight dtype (no autocast)
    return KVCache(model.config, batch, max_len, p.device, p.dtype)


@torch.no_grad()
def continuation_logprobs(model: Transformer, prompt, continuations, cache=None, chunk=128):
    """Per-token log P(continuation | prompt) for several continuations of one prompt: a list of
    1-D float32 tensors, one per continuation. See forest_logprobs."""
    return forest_logprobs(model, prompt, [(len(prompt), continuations)], cache, chunk)[0]


@torch.no_grad()
def forest_logprobs(model: Transformer, seq, groups, cache=None, chunk=128):
    """Per-token log-probs of continuations of several prefixes of one sequence, in one pass.

    groups: [(P, continuations)]: continuations of seq[:P], for each P. The prefix runs once (or is
    given: `cache` whose row 0 holds at least seq[:max P - 1], for instance the cache of the whole
    sequence); then every continuation runs in one forward branched off it, as a forest: a
    position's logits depend only on the tokens before it, so continuations of one prefix that
    share their first tokens (options "40".."49" all start with "4") share those tokens, their
    keys/values and their logits. Each node is one token; it attends to its prefix (read in place)
    and to its own ancestors. Returns, per group, a list of 1-D float32 tensors (one per continuation).
    """
    device = model.embed_tokens.weight.device
    S = max(P for P, _ in groups) - 1  # cache slots shared by all trees
    if cache is None:
        cache = new_cache(model, 1, S)
        if S:
            model(torch.tensor([seq[:S]], device=device), cache=cache,
                  select=torch.zeros(1, S, dtype=torch.bool, device=device))
    nodes = {}  # (group, a prefix of a continuation that predicts a token): its node, in order of first use
    for g, (P, conts) in enumerate(groups):
        for c in conts:
            for j in range(len(c)):
                nodes.setdefault((g, tuple(c[:j])), len(nodes))
    keys = list(nodes)
    seen = torch.zeros(len(keys), S + len(keys), dtype=torch.bool)
    for i, (g, key) in enumerate(keys):  # its prefix, itself and its ancestors
        seen[i, :groups[g][0] - 1] = True
        seen[i, [S + nodes[(g, key[:d])] for d in range(len(key) + 1)]] = True
    ids = torch.tensor([[key[-1] if key else seq[groups[g][0] - 1] for g, key in keys]], device=device)
    pos = torch.tensor([[groups[g][0] - 1 + len(key) for g, key in keys]], device=device)
    h = model(ids, pos=pos, cache=cache.branch(1, S, len(keys)), tree=seen.to(device))[0]
    targets = torch.tensor([t for _, conts in groups for c in conts for t in c])
    rows = [nodes[(g, tuple(c[:j]))] for g, (_, conts) in enumerate(groups) for c in conts for j in range(len(c))]
    lp = iter(token_logprobs(model, h, targets, chunk, rows=rows)[0].split(
        [len(c) for _, conts in groups for c in conts]))
    return [[next(lp) for _ in conts] for _, conts in groups]
