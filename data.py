"""Messages -> token ids + loss mask; description dropout; fitting to a token budget; packing; batches.

A message list is the model card's shape:
    [{"role": "description", "content": ...},   # optional, at most one, first
     {"role": "input", "content": ...},         # optional, before an output
     {"role": "output", "content": ...}, ...]

Spectrum format (Gemma 3 turn markup; <start_of_turn>/<end_of_turn> are single tokens 105/106):
    <bos>
    <start_of_turn>description\n{d}<end_of_turn>\n
    <start_of_turn>input\n{x}<end_of_turn>\n
    <start_of_turn>output\n  [{y}<end_of_turn>]  \n        <- loss only on [...]
and, with no description, the first output carries no loss (nothing to infer it from).
Sequences are tokenized segment by segment, so training tokens are exactly the tokens the model
sees and produces when it generates after the prompt <start_of_turn>output\n.
"""
import random
from dataclasses import dataclass

import torch

ROLES = ("description", "input", "output")
BOS, EOS, PAD, SOT, EOT = 2, 1, 0, 105, 106

# The chat baseline (instruction-tuned models): Gemma's own template turns, system prompt folded
# into the first user turn, outputs as model turns (reference_eval.md §4).
CHAT_SYSTEM = ("You will see samples from a random process: a description of it (optional) and i.i.d. "
               "example outputs, each possibly with an input. The outputs are exchangeable draws, not "
               "a single best answer. Respond with JUST the next output, as a new independent draw "
               "from the same process, nothing else.")

# tokenizer_config.json chat_template: renders the spectrum roles exactly like render() (the text;
# which tokens carry loss is a training matter). Content is not trimmed, as in training.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['description', 'input', 'output'] %}"
    "{{ raise_exception('Spectrum roles are description, input and output, not ' + message['role']) }}"
    "{% endif %}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>output\n' }}{% endif %}")


def validate(messages):
    if not isinstance(messages, list) or not messages:
        raise ValueError("empty message list: give a description and/or example outputs")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else type(m).__name__
            raise ValueError(f"message {i} has unknown role {role!r}: use one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"message {i} ({m['role']}) content must be a string, not "
                             f"{type(m.get('content')).__name__} (JSON-encode structured values)")
        if m["role"] == "description" and i > 0:
            raise ValueError("the description must be the first message, and there can be only one")
    return messages


def output_text(content, fmt="spectrum"):
    """The scored text of one output in `fmt`: its content plus the format's end marker. The text a
    model must produce after the generation prompt (what option scoring scores, where sampling stops)."""
    if fmt == "spectrum":
        return content + "<end_of_turn>"
    if fmt == "colon":
        return " " + content.strip() + "\n\n"
    if fmt == "chat":
        return content.strip() + "<end_of_turn>"
    raise ValueError(f"unknown format {fmt!r}: use spectrum, colon or chat")


def output_ids(content, tok, fmt="spectrum", end=True):
    """Token ids of output_text(content, fmt): what option scoring scores after the generation
    prompt. end=False drops the format's end marker (a candidate's bare text)."""
    span = output_text(content, fmt)
    if not end:
        span = span.removesuffix("\n\n" if fmt == "colon" else "<end_of_turn>")
    return tok.encode(span, add_special_tokens=False).ids


def render(messages, fmt="spectrum", generation_prompt=False):
    """Ordered segments (text, has_loss) of a message list in `fmt` (spectrum | colon | chat).

    Each scored output contributes exactly one segment with loss, and two scored segments are
    always separated by unscored text, so contiguous runs of loss tokens = scored outputs.
    """
    validate(messages)
    if fmt == "chat":
        return render_chat(messages, generation_prompt)
    has_desc = messages[0]["role"] == "description"
    segs, first_output = [], True
    for m in messages:
        r, c = m["role"], m["content"]
        if fmt == "spectrum":
            if r == "output":
                scored = has_desc or not first_output
                segs += [("<start_of_turn>output\n", False), (output_text(c, fmt), scored), ("\n", False)]
            else:
                segs.append((f"<start_of_turn>{r}\n{c}<end_of_turn>\n", False))
        elif fmt == "colon":  # pretrained baseline: every output scored, terminator included
            if r == "output":
                segs += [("Output:", False), (output_text(c, fmt), True)]
            else:
                segs.append((f"{r.capitalize()}: {c}\n\n", False))
        else:
            raise ValueError(f"unknown format {fmt!r}: use spectrum, colon or chat")
        first_output &= r != "output"
    if generation_prompt:
        segs.append(("<start_of_turn>output\n" if fmt == "spectrum" else "Output:", False))
    return segs


def render_chat(messages, generation_prompt):
    """Instruction-tuned baseline: Gemma's chat turns. Without a description the first example goes
    into the system prompt, unscored (the same information the spectrum format leaves unscored)."""
    msgs = list(messages)
    system = CHAT_SYSTEM
    if msgs[0]["role"] == "description":
        system += "\n\nDescription: " + msgs.pop(0)["content"]
    else:
        first = next(i for i, m in enumerate(msgs) if m["role"] == "output") if any(
            m["role"] == "output" for m in msgs) else -1
        for m in msgs[:first + 1]:
            system += f"\n\nExample {m['role'].capitalize()}: {m['content']}"
        msgs = msgs[first + 1:]
    turns, pending = [], None  # (role, content); a user turn "Generate" precedes an input-less output
    for m in msgs:
        if m["role"] == "input":
            pending = m["content"]
        else:
            turns += [("user", "Generate" if pending is None else pending), ("model", m["content"])]
            pending = None
    if pending is not None or generation_prompt:
        turns.append(("user", "Generate" if pending is None else pending))
    segs, prefix = [], system + "\n\n"
    for role, c in turns:
        if role == "user":
            segs.append((f"<start_of_turn>user\n{prefix}{c.strip()}<end_of_turn>\n", False))
            prefix = ""
        else:
            segs += [("<start_of_turn>model\n", False), (output_text(c, "chat"), True), ("\n", False)]
    if generation_prompt:
        segs.append(("<start_of_turn>model\n", False))
    return segs


def encode(segments, tok):
    """Token ids and loss mask of rendered segments: one <bos> at position 0, then each segment
    tokenized on its own (special tokens in the text are single ids)."""
    ids, mask = [BOS], [0]
    for text, loss in segments:
        t = tok.encode(text, add_special_tokens=False).ids
        ids += t
        mask += [int(loss)] * len(t)
    return ids, mask


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
    used = len(encode(render(messages, "spectrum") if messages else [], tok)[0])
    kept = []
    for j, n in example_lengths(instance, order, tok):
        if used + n > max_len:
            if not kept or 1 + n > max_len:
                raise ValueError(f"task {instance.task}: an example of {instance.group or 'an instance'} "
                                 f"needs {used + n if not kept else 1 + n} tokens > max_len {max_len}; "
                                 "raise --max_len or filter long examples in the task")
            break
        kept.append(j)
        used += n
    for j in kept:
        messages += example_messages(instance.examples[j])
    if desc is None and len(kept) < 2:
        return None
    ids, mask = encode(render(messages, "spectrum"), tok)
    assert len(ids) == used <= max_len  # segment lengths add up: segments tokenize independently
    return messages, ids, mask


def example_lengths(instance, order, tok, chunk=32):
    """(index, tokens) of each example in `order`, as it renders in the spectrum format. Tokenized
    a chunk at a time in one batch call, so a long pool costs only as far as the budget reaches."""
    for at in range(0, len(order), chunk):
        idx = order[at:at + chunk]
        texts = [[t for t, _ in render(example_messages(instance.examples[j]), "spectrum")] for j in idx]
        enc = iter(tok.encode_batch([t for ts in texts for t in ts], add_special_tokens=False))
        for j, ts in zip(idx, texts):
            yield j, sum(len(next(enc).ids) for _ in ts)


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


def collate(seqs, rows, max_len):
    """Tensors of packed rows: ids, pos (restarting at 0 per sequence), seq ids, loss mask."""
    R = len(rows)
    ids = torch.full((R, max_len), PAD, dtype=torch.long)
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
        """Rows of a whole epoch (builds every window once: one pass of tokenization)."""
        n, w = 0, 0
        while rows := self.window_rows(epoch, w):
            n, w = n + len(rows), w + 1
        return n

    def next_batch(self, rows_per_rank):
        """This rank's rows of the next global batch, collated, plus the global loss-token count."""
        rows = []
        while len(rows) < rows_per_rank * self.world:
            built = self.window_rows(self.epoch, self.window)
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
        mine = [collate(seqs, [r], self.cfg.max_len) for seqs, r in rows[self.rank::self.world]]
        return {k: torch.cat([b[k] for b in mine]) for k in mine[0]}, n_loss

    def state_dict(self):
        return {"epoch": self.epoch, "window": self.window, "at": self.at, "seed": self.cfg.seed,
                "window_size": self.cfg.window}

    def load_state_dict(self, s):
        if (s["seed"], s["window_size"]) != (self.cfg.seed, self.cfg.window):
            raise ValueError(f"resuming with seed/window {self.cfg.seed}/{self.cfg.window}, but the run "
                             f"used {s['seed']}/{s['window_size']}: pass the same --seed and --window")
        self.epoch, self.window, self.at = s["epoch"], s["window"], s["at"]
