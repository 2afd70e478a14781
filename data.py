"""Messages -> token ids + loss mask, in one of three formats; description dropout; fitting to a
token budget; packing; the training stream.

A message list is the model card's shape:
    [{"role": "description", "content": ...},   # optional, at most one, first
     {"role": "input", "content": ...},         # optional, before an output
     {"role": "output", "content": ...}, ...]

Formats (FORMATS):
  spectrum  the model family's own chat markup with roles description/input/output (MARKUPS):
              Gemma 3   <bos><start_of_turn>{role}\n{c}<end_of_turn>\n
              Qwen3     <|im_start|>{role}\n{c}<|im_end|>\n                      (no BOS)
              Llama 3   <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{c}<|eot_id|>
            loss on each output's content and its closing turn token, except the first output of
            a sequence without a description (nothing to infer it from); generation prompt: the
            header of an output turn; an output ends at the closing token (or the family's eos).
  colon     "Description: {d}\n\n", "Input: {x}\n\n", "Output:" + " {y}\n\n" (loss on " {y}\n\n"),
            for pretrained baselines; an output ends at its first newline.
  chat      an instruction-tuned model's own chat template (from its tokenizer_config.json): a
            system prompt explaining the task, inputs (or "Generate") as user turns, outputs as
            assistant turns with loss on their content and closing token.

Token ids: a sequence is rendered to one string and tokenized whole, and a token carries loss
when its characters overlap a scored span (offsets): exactly the ids transformers'
apply_chat_template gives on a saved checkpoint. A model generates after the prompt's last token,
so a prompt and what follows it are tokenized apart (prompt_ids, output_ids); the two agree
unless characters at the boundary merge into one token, which in the spectrum format happens only
for an output that starts with a newline (tests/test_data.py checks both on adversarial contents).
"""
import collections
import dataclasses
import json
import random
from dataclasses import dataclass

import numpy as np
import torch

from cli import UserError

ROLES = ("description", "input", "output")


@dataclass(frozen=True)
class Markup:
    """How one model family writes a chat turn. Every string here is a single special token of the
    family's tokenizer, except `open`, whose {role} is ordinary text."""
    bos: str           # begins every sequence ("" for none)
    open: str          # a turn's header, {role} filled in
    close: str         # ends a turn: the token a model learns to emit after an output
    gap: str           # text between a turn's close and the next turn
    eos: str           # the tokenizer's end of text (also stops generation)


MARKUPS = {
    "gemma3": Markup("<bos>", "<start_of_turn>{role}\n", "<end_of_turn>", "\n", "<eos>"),
    "llama3": Markup("<|begin_of_text|>", "<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>", "",
                     "<|end_of_text|>"),
    "chatml": Markup("", "<|im_start|>{role}\n", "<|im_end|>", "\n", "<|endoftext|>"),  # Qwen3, SmolLM2
}


class Tokenizer:
    """A Hugging Face tokenizer.json with what the formats need from it: the family's markup (found
    by its special tokens: ids always come from here, never literals), and the chat template of an
    instruction-tuned checkpoint."""

    def __init__(self, hf, chat_template=None, name="tokenizer.json"):
        self.hf, self.chat_template, self.name = hf, chat_template, name
        single = lambda s: s and len(hf.encode(s, add_special_tokens=False).ids) == 1  # noqa: E731
        family = next((f for f, m in MARKUPS.items()
                       if single(m.close) and single(m.open.split("{")[0]) and (not m.bos or single(m.bos))), None)
        if family is None:
            raise UserError(f"{name} has none of the turn tokens of Gemma 3 (<start_of_turn>), Llama 3 "
                            "(<|start_header_id|>) or Qwen3 (<|im_start|>): not a tokenizer of a supported family")
        self.family, self.markup = family, MARKUPS[family]
        m = self.markup
        self.bos_id = hf.token_to_id(m.bos) if m.bos else None
        self.close_id = hf.token_to_id(m.close)
        self.eos_id = hf.token_to_id(m.eos) if single(m.eos) else None
        self.stop_ids = [self.close_id] + ([self.eos_id] if self.eos_id is not None else [])
        pad = hf.token_to_id("<pad>")
        self.pad_id = pad if pad is not None else (self.eos_id if self.eos_id is not None else self.close_id)
        self._newline_ids = None

    def encode(self, text) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    @property
    def vocab_size(self):
        return self.hf.get_vocab_size()

    def newline_ids(self):
        """Ids of every token whose text holds a newline (the colon format's stop rule)."""
        if self._newline_ids is None:
            pieces = (self.decode([i]) for i in range(self.vocab_size))
            self._newline_ids = [i for i, s in enumerate(pieces) if "\n" in s]
        return self._newline_ids


def validate(messages):
    if not isinstance(messages, list) or not messages:
        raise UserError("the message list is empty (or not a list): give a description and/or example outputs")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else type(m).__name__
            raise UserError(f"message {i} has unknown role {role!r}: use one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise UserError(f"message {i} ({m['role']}) content must be a string, not "
                            f"{type(m.get('content')).__name__} (JSON-encode structured values)")
        if m["role"] == "description" and i > 0:
            raise UserError("the description must be the first message, and there can be only one")
    return messages


# --- the three formats -----------------------------------------------------------------------------
# render_*(messages, tok, generation_prompt) -> [(text, scored)] segments; FORMATS below.

def render_spectrum(messages, tok, generation_prompt):
    m = tok.markup
    has_desc = messages[0]["role"] == "description"
    segs, first_output = [(m.bos, False)], True
    for msg in messages:
        r, c = msg["role"], msg["content"]
        if r == "output":
            segs += [(m.open.format(role="output"), False), (c + m.close, has_desc or not first_output),
                     (m.gap, False)]
            first_output = False
        else:
            segs.append((m.open.format(role=r) + c + m.close + m.gap, False))
    if generation_prompt:
        segs.append((m.open.format(role="output"), False))
    return segs


def render_colon(messages, tok, generation_prompt):
    """Pretrained baseline: every output scored, its terminator included."""
    segs = [(tok.markup.bos, False)]
    for msg in messages:
        if msg["role"] == "output":
            segs += [("Output:", False), (" " + msg["content"].strip() + "\n\n", True)]
        else:
            segs.append((f"{msg['role'].capitalize()}: {msg['content']}\n\n", False))
    if generation_prompt:
        segs.append(("Output:", False))
    return segs


CHAT_SYSTEM = ("You will see samples from a random process: a description of it (optional) and i.i.d. "
               "example outputs, each possibly with an input. The outputs are exchangeable draws, not "
               "a single best answer. Respond with JUST the next output, as a new independent draw "
               "from the same process, nothing else.")


def chat_messages(messages):
    """The chat baseline's conversation: the task explained in a system prompt (with the description;
    without one, the first example goes there, unscored, as the spectrum format leaves it
    unscored), then inputs (or "Generate") as user turns and outputs as assistant turns."""
    msgs, system = list(messages), CHAT_SYSTEM
    if msgs[0]["role"] == "description":
        system += "\n\nDescription: " + msgs.pop(0)["content"]
    elif any(x["role"] == "output" for x in msgs):
        first = next(i for i, x in enumerate(msgs) if x["role"] == "output")
        for x in msgs[:first + 1]:
            system += f"\n\nExample {x['role'].capitalize()}: {x['content']}"
        msgs = msgs[first + 1:]
    conv, pending = [{"role": "system", "content": system}], None
    for x in msgs:
        if x["role"] == "input":
            pending = x["content"]
        else:
            conv += [{"role": "user", "content": "Generate" if pending is None else pending},
                     {"role": "assistant", "content": x["content"]}]
            pending = None
    return conv, pending


def render_chat(messages, tok, generation_prompt):
    """The conversation through the checkpoint's own chat template; each assistant turn's content
    (as the template writes it) and closing token are scored."""
    if not tok.chat_template:
        raise UserError(f"{tok.name}: the checkpoint has no chat template (an instruction-tuned model's "
                        "tokenizer_config.json has one): use --format colon for a pretrained model")
    if tok.chat_template == chat_template(tok.markup):
        raise UserError(f"{tok.name}: its chat template writes the spectrum format (a Spectrum checkpoint: use "
                        "--format spectrum)")
    conv, pending = chat_messages(messages)
    if pending is not None or generation_prompt:
        conv.append({"role": "user", "content": "Generate" if pending is None else pending})
    text = apply_template(tok, conv, add_generation_prompt=generation_prompt)
    segs, at, close = [], 0, tok.markup.close
    for i, msg in enumerate(conv):
        if msg["role"] != "assistant":
            continue
        before = apply_template(tok, conv[:i], add_generation_prompt=True)
        lcp = next((j for j, (a, b) in enumerate(zip(text, before)) if a != b), min(len(text), len(before)))
        start = text.find(msg["content"].strip(), max(at, lcp))
        end = start + len(msg["content"].strip())
        if start < 0 or not text.startswith(close, end):
            raise UserError(f"{tok.name}: its chat template does not write assistant turns as content + {close}")
        segs += [(text[at:start], False), (text[start:end + len(close)], True)]
        at = end + len(close)
    return segs + [(text[at:], False)]


def apply_template(tok, conversation, add_generation_prompt):
    """transformers' apply_chat_template text: the same jinja settings and helpers. strftime_now
    gives a fixed date (Llama 3's default, 26 Jul 2024), so results do not depend on the day."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False, **_: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent)
    env.globals |= {"raise_exception": raise_exception, "strftime_now": lambda f: "26 Jul 2024"}
    try:
        return env.from_string(tok.chat_template).render(
            messages=conversation, add_generation_prompt=add_generation_prompt, bos_token=tok.markup.bos,
            eos_token=tok.markup.eos)
    except jinja2.exceptions.TemplateError as e:
        raise UserError(f"{tok.name}: its chat template failed ({e})") from None


@dataclass(frozen=True)
class Format:
    render: callable     # (messages, tok, generation_prompt) -> [(text, scored)]
    scored: callable     # (content, markup) -> the text a model produces for an output, end included
    end: callable        # markup -> the end marker of that text
    stop: str            # "turn": the closing token or eos ends an output; "newline": a newline does


FORMATS = {
    "spectrum": Format(render_spectrum, lambda c, m: c + m.close, lambda m: m.close, "turn"),
    "colon": Format(render_colon, lambda c, m: " " + c.strip() + "\n\n", lambda m: "\n\n", "newline"),
    "chat": Format(render_chat, lambda c, m: c.strip() + m.close, lambda m: m.close, "turn"),
}


def get_format(fmt) -> Format:
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    return FORMATS[fmt]


def render(messages, tok, fmt="spectrum", generation_prompt=False):
    """Ordered segments (text, scored) of a message list in `fmt`. Each scored output is one
    segment, and two scored segments are always separated by unscored text, so contiguous runs of
    loss tokens = scored outputs."""
    return get_format(fmt).render(validate(messages), tok, generation_prompt)


def encode(segments, tok):
    """Token ids and loss mask of rendered segments: the joined text tokenized whole; a token is
    scored when its characters overlap a scored segment."""
    text = "".join(t for t, _ in segments)
    scored = np.zeros(len(text) + 1, dtype=np.int64)
    at = 0
    for t, loss in segments:
        if loss:
            scored[at:at + len(t)] = 1
        at += len(t)
    enc = tok.hf.encode(text, add_special_tokens=False)
    if not enc.ids:
        return [], []
    cum = np.concatenate([[0], np.cumsum(scored)])
    off = np.array(enc.offsets)
    return list(enc.ids), ((cum[off[:, 1]] - cum[off[:, 0]]) > 0).astype(int).tolist()


def prompt_ids(tok, messages, fmt="spectrum"):
    """Token ids of a prompt: the messages and the format's generation prompt."""
    return encode(render(messages, tok, fmt, generation_prompt=True), tok)[0]


def output_text(content, tok, fmt="spectrum"):
    """The scored text of one output in `fmt`: what a model must produce after the generation
    prompt, its end marker included (what option scoring scores, where sampling stops)."""
    return get_format(fmt).scored(content, tok.markup)


def output_ids(content, tok, fmt="spectrum", end=True):
    """Token ids of output_text(content, fmt), tokenized on its own as it follows a prompt.
    end=False drops the format's end marker (a candidate's bare text)."""
    f = get_format(fmt)
    span = f.scored(content, tok.markup)
    return tok.encode(span if end else span.removesuffix(f.end(tok.markup)))


def stop_ids(tok, fmt="spectrum"):
    """Token ids that end an output in `fmt`."""
    if get_format(fmt).stop == "newline":
        return ([tok.eos_id] if tok.eos_id is not None else []) + tok.newline_ids()
    return tok.stop_ids


def chat_template(m: Markup) -> str:
    """A jinja chat template that renders the spectrum roles exactly like render_spectrum (the text;
    which tokens carry loss is a training matter). Saved checkpoints carry it."""
    op, cl = m.open.split("{role}")
    return ("{{ '" + m.bos + "' }}"
            "{% for message in messages %}"
            "{% if message['role'] not in ['description', 'input', 'output'] %}"
            "{{ raise_exception('Spectrum roles are description, input and output, not ' + message['role']) }}"
            "{% endif %}"
            "{{ " + json.dumps(op) + " + message['role'] + " + json.dumps(cl) + " + message['content'] + "
            + json.dumps(m.close + m.gap) + " }}"
            "{% endfor %}"
            "{% if add_generation_prompt %}{{ " + json.dumps(op + "output" + cl) + " }}{% endif %}")


def loss_spans(mask):
    """[(start, end)] of each contiguous run of loss tokens: one per scored output, in order."""
    spans, start = [], None
    for i, m in enumerate(list(mask) + [0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append((start, i))
            start = None
    return spans


def example_messages(ex):
    return ([{"role": "input", "content": ex.input}] if ex.input is not None else []) + \
        [{"role": "output", "content": ex.output}]


# --- sequences from task instances ----------------------------------------------------------

def draw(instance, rng: random.Random, tok, p_drop=0.2, max_len=1024):
    """One sequence of an instance: the description kept w.p. 1 - p_drop (one variant, uniformly),
    examples in a fresh random order, whole examples added until the next one would pass max_len.

    Returns (messages, ids, mask), or None when the sequence would carry no loss token (no
    description and only one example fits). An example that cannot fit at all is an error.
    """
    desc = None
    if instance.descriptions and rng.random() >= p_drop:
        desc = rng.choice(instance.descriptions)
    order = list(range(len(instance.examples)))
    rng.shuffle(order)
    messages = [{"role": "description", "content": desc}] if desc is not None else []
    bos = len(tok.encode(tok.markup.bos))
    used = len(tok.encode("".join(t for t, _ in render_spectrum(messages, tok, False)))) if messages else bos
    kept = []
    for j, n in example_lengths(instance, order, tok):
        if used + n > max_len and not kept and desc is not None and bos + n <= max_len:
            desc, messages, used = None, [], bos  # the first example fits only without the description
        if used + n > max_len:
            if bos + n > max_len:
                raise UserError(f"task {instance.task}: an example of {instance.group or 'an instance'} needs "
                                f"{bos + n} tokens > max_len {max_len}; raise --max_len or leave such examples "
                                "out (data.drop_long_examples)")
            break
        kept.append(j)
        used += n
    while True:  # pieces tokenized apart add up to the whole but for merges at their seams: check
        body = [m for j in kept for m in example_messages(instance.examples[j])]
        if desc is None and len(kept) < 2:
            return None
        ids, mask = encode(render_spectrum(messages + body, tok, False), tok)
        if len(ids) <= max_len:
            return messages + body, ids, mask
        kept.pop()


def drop_long_examples(instances, tok, max_len):
    """The instances without the examples that cannot fit max_len even alone (sequences are never
    cut inside an output), and {task: number left out}, so a caller can say what it left out.
    Every token covers at least one byte of text (special tokens: more), so an example of at most
    max_len - 1 bytes fits for sure: only the longer ones are tokenized."""
    out, dropped = [], {}
    room = max_len - len(tok.encode(tok.markup.bos))
    for inst in instances:
        texts = [example_text(e, tok.markup) for e in inst.examples]
        maybe = [j for j, t in enumerate(texts) if len(t.encode()) > room]
        long = {j for j, e in zip(maybe, tok.hf.encode_batch([texts[j] for j in maybe], add_special_tokens=False))
                if len(e.ids) > room}
        if long:
            dropped[inst.task] = dropped.get(inst.task, 0) + len(long)
            inst = dataclasses.replace(inst, examples=[e for j, e in enumerate(inst.examples) if j not in long])
        if inst.examples:
            out.append(inst)
    return out, dropped


def example_text(ex, m: Markup):
    """An example's turns as they render in the spectrum format."""
    return "".join(m.open.format(role=x["role"]) + x["content"] + m.close + m.gap for x in example_messages(ex))


def example_lengths(instance, order, tok, chunk=32):
    """(index, tokens) of each example in `order`, its turns as they render in the spectrum format.
    Tokenized a chunk at a time in one batch call, so a long pool costs only as far as the budget
    reaches."""
    for at in range(0, len(order), chunk):
        idx = list(order[at:at + chunk])
        texts = [example_text(instance.examples[j], tok.markup) for j in idx]
        for j, e in zip(idx, tok.hf.encode_batch(texts, add_special_tokens=False)):
            yield j, len(e.ids)


def pack(seqs, max_len):
    """First-fit-decreasing of sequences (lists of ids/masks) into rows of max_len tokens.

    Returns a list of rows, each a list of sequence indices. Attention never crosses sequences
    (the model takes sequence ids), so a row is exactly its sequences run one by one.
    """
    rows, room = [], []
    for i in sorted(range(len(seqs)), key=lambda i: -len(seqs[i][0])):
        n = len(seqs[i][0])
        for r in range(len(rows)):
            if room[r] >= n:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(max_len - n)
    return rows


def collate(seqs, rows, max_len, pad_id=0):
    """Tensors of packed rows: ids, pos (restarting at 0 per sequence), seq ids, loss mask."""
    R = len(rows)
    ids = torch.full((R, max_len), pad_id, dtype=torch.long)
    pos = torch.zeros((R, max_len), dtype=torch.long)
    seq = torch.full((R, max_len), -1, dtype=torch.long)  # padding: its own "sequence"
    mask = torch.zeros((R, max_len), dtype=torch.bool)
    for r, row in enumerate(rows):
        at = 0
        for s, i in enumerate(row):
            t, m = seqs[i][0], seqs[i][1]
            ids[r, at:at + len(t)] = torch.tensor(t)
            pos[r, at:at + len(t)] = torch.arange(len(t))
            seq[r, at:at + len(t)] = s
            mask[r, at:at + len(t)] = torch.tensor(m, dtype=torch.bool)
            at += len(t)
        pos[r, at:] = torch.arange(max_len - at)
    return {"ids": ids, "pos": pos, "seq": seq, "mask": mask}


# --- the training stream --------------------------------------------------------------------

@dataclass
class StreamConfig:
    seed: int = 1337
    p_drop: float = 0.2          # description dropout (the paper's 0.2; the released code used 0.4)
    max_len: int = 1024          # token budget of a sequence and length of a packed row
    window: int = 256            # sequences packed together (larger packs tighter, costs memory)


class Stream:
    """Packed rows of an epoch over task instances, deterministic given (seed, epoch), sharded by rank.

    Every rank builds the same global sequence of rows and takes rows rank, rank+W, ..., so ranks
    never overlap and every rank knows the global loss-token count of a step without communication.
    Instances are shuffled per epoch and drawn `window` at a time; the rows of a window depend only
    on (seed, epoch, window), so the position (epoch, window, row) restores exactly.
    """

    def __init__(self, instances, tok, cfg: StreamConfig, rank=0, world=1):
        self.instances, self.tok, self.cfg, self.rank, self.world = instances, tok, cfg, rank, world
        self.epoch, self.window, self.at = 0, 0, 0
        self._built = (None, None)
        self._epoch_rows = {}  # epoch -> rows: a time-budgeted run asks at every re-plan
        self.real_tokens = self.row_tokens = 0   # packing efficiency so far

    def window_rows(self, epoch, w):
        """[(seqs, row)] of window w of an epoch, where seqs = [(ids, mask)] and row = indices into
        seqs; [] past the end of the epoch."""
        if self._built[0] == (epoch, w):
            return self._built[1]
        c = self.cfg
        order = list(range(len(self.instances)))
        random.Random(f"{c.seed}/{epoch}").shuffle(order)
        seqs = []
        for i in order[w * c.window:(w + 1) * c.window]:
            # one rng per (seed, epoch, instance): the draw depends on nothing else
            s = draw(self.instances[i], random.Random(f"{c.seed}/{epoch}/{i}"), self.tok, c.p_drop, c.max_len)
            if s is not None:
                seqs.append((s[1], s[2]))
        rows = [(seqs, r) for r in pack(seqs, c.max_len)]
        self._built = ((epoch, w), rows)
        return rows

    def rows_per_epoch(self, epoch=0):
        """Rows of a whole epoch: one pass of tokenization over every window (seconds at a few
        thousand instances), then remembered. The window being read stays built."""
        if epoch not in self._epoch_rows:
            reading, n, w = self._built, 0, 0
            while rows := self.window_rows(epoch, w):
                n, w = n + len(rows), w + 1
            self._built, self._epoch_rows[epoch] = reading, n
        return self._epoch_rows[epoch]

    def next_batch(self, rows_per_rank):
        """This rank's rows of the next global batch, collated, plus the global loss-token count."""
        rows = []
        while len(rows) < rows_per_rank * self.world:
            built = self.window_rows(self.epoch, self.window)
            if not built and self.window == 0:
                raise UserError(f"no training sequence can be drawn from these {len(self.instances)} instances: "
                                "none has a description or two examples that fit max_len")
            if not built:  # end of epoch: the next one reshuffles and redraws everything
                self.epoch, self.window, self.at = self.epoch + 1, 0, 0
                continue
            if self.at == len(built):
                self.window, self.at = self.window + 1, 0
                continue
            rows.append(built[self.at])
            self.at += 1
        n_loss = sum(seqs[i][1].count(1) for seqs, r in rows for i in r)
        self.real_tokens += sum(len(seqs[i][0]) for seqs, r in rows for i in r)
        self.row_tokens += len(rows) * self.cfg.max_len
        mine = [collate(seqs, [r], self.cfg.max_len, self.tok.pad_id) for seqs, r in rows[self.rank::self.world]]
        return {k: torch.cat([b[k] for b in mine]) for k in mine[0]}, n_loss

    def state_dict(self):
        return {"epoch": self.epoch, "window": self.window, "at": self.at, "seed": self.cfg.seed,
                "window_size": self.cfg.window, "mixture": self.mixture()}

    def mixture(self):
        """{task: instances}: what a resumed run must find again (data can move or go missing)."""
        return dict(sorted(collections.Counter(i.task for i in self.instances).items()))

    def load_state_dict(self, s):
        if (s["seed"], s["window_size"]) != (self.cfg.seed, self.cfg.window):
            raise UserError(f"resuming with seed/window {self.cfg.seed}/{self.cfg.window}, but the run "
                             f"used {s['seed']}/{s['window_size']}: pass the same --seed and --window")
        was, now = s.get("mixture"), self.mixture()
        if was is not None and was != now:
            diff = sorted(set(was.items()) ^ set(now.items()))
            raise UserError(f"resuming on other data: the run had {sum(was.values())} instances of {len(was)} tasks, "
                            f"this has {sum(now.values())} of {len(now)} (first difference: {diff[0][0]}): "
                            "point --data_dir or SPECTRUM_DATA at the data the run started with")
        self.epoch, self.window, self.at = s["epoch"], s["window"], s["at"]
