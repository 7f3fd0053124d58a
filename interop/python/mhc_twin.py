#!/usr/bin/env python3
"""A PyTorch twin of mHC.NET's GPT: the same model and connections (residual, HC static and dynamic, mHC with the
paper's or DeepSeek-V4's arithmetic, and mHC's variants), read from and written to our safetensors files in the `hf` layout, so weights
move between `mhc` and PyTorch (docs/scale-out.md).

    python3 interop/python/mhc_twin.py eval --weights model.safetensors --data text.txt

Written from docs/spec.md and docs/interop.md. Standard library and torch only; runs on PyTorch 1.13 and 2.x.
The module tree is named after the `hf` layout, so `state_dict()` is the file's contents name for name.
"""
import argparse
import ctypes
import itertools
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors: 8-byte little-endian header length, a JSON header, raw little-endian data.

SAFETENSORS_TYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                     "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """The tensors (name -> CPU tensor) and the `__metadata__` of a safetensors file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        length = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else len(data)
        if length > len(data) - 8:
            raise ValueError("it is not a safetensors file (its header length does not fit the file)")
        header = json.loads(data[8:8 + length])
        metadata = header.pop("__metadata__", {})
        start, tensors = 8 + length, {}
        for name, entry in header.items():
            begin, end = entry["data_offsets"]
            if entry["dtype"] not in SAFETENSORS_TYPES or not 0 <= begin <= end <= len(data) - start:
                raise ValueError(f"tensor '{name}' has type {entry['dtype']} or a byte range outside the data")
            dtype = SAFETENSORS_TYPES[entry["dtype"]]
            raw = bytearray(data[start + begin:start + end])
            flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            tensors[name] = flat.reshape(entry["shape"])
        return tensors, metadata
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
        raise ValueError(f"weight file '{path}' cannot be read: {e}") from e


def write_safetensors(path, tensors, metadata):
    """Writes name -> tensor (in order) with string metadata; replaces `path` atomically."""
    names = {dtype: name for name, dtype in SAFETENSORS_TYPES.items()}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        blob = ctypes.string_at(tensor.data_ptr(), tensor.numel() * tensor.element_size())   # no numpy needed
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)   # the data starts 8-byte aligned
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(temporary, path)

# ---- the model (spec §1-§6; names and shapes of docs/interop.md's hf layout).

RMS_EPSILON = 1e-6          # RMSNorm in the branches, the final norm and mHC's flattened state
LAYER_NORM_EPSILON = 1e-5   # dynamic HC's per-stream LayerNorm
DEEPSEEK_EPSILON = 1e-6     # DeepSeek-V4's ε in H_pre and Sinkhorn
KINDS = ("residual", "hc-static", "hc", "mhc", "mhc-static", "mhc-lite", "mhc-res-only", "mhc-res-pre")


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * x.square().mean(-1, keepdim=True).add(RMS_EPSILON).rsqrt() * self.weight


class Attention(nn.Module):
    """Causal multi-head attention with rotary positions on the two halves of each head (Llama's rotate_half)."""

    def __init__(self, d, heads, seq_len, dropout):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.heads, self.dropout = heads, dropout
        h = d // heads
        frequencies = 10000.0 ** (-torch.arange(0, h, 2, dtype=torch.float64) / h)
        angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), frequencies)
        # float32 tables, as mhc keeps them; not learned, so not in the state dict
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def rotate(self, x):
        t, half = x.shape[-2], x.shape[-1] // 2
        c, s = self.cos[:t].to(x.dtype), self.sin[:t].to(x.dtype)
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    def forward(self, u):
        b, t, d = u.shape
        q, k, v = (p(u).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = self.rotate(q), self.rotate(k)
        scores = q.matmul(k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool, device=u.device).triu(1)
        weights = F.dropout(scores.masked_fill(causal, float("-inf")).softmax(-1), self.dropout, self.training)
        merged = weights.matmul(v).transpose(1, 2).reshape(b, t, d)
        return F.dropout(self.o_proj(merged), self.dropout, self.training)


class SwiGLU(nn.Module):
    def __init__(self, d, hidden, dropout):
        super().__init__()
        self.gate_proj, self.up_proj = nn.Linear(d, hidden, bias=False), nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)
        self.dropout = dropout

    def forward(self, h):
        return F.dropout(self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h)), self.dropout, self.training)


def sinkhorn(logits, iterations, epsilon):
    """H_res from logits [..., n, n] (row i = output stream i): columns then rows, `iterations` times (spec §6).
    ε > 0 is DeepSeek-V4's form: a softmax first, ε after it and in every denominator (spec §10)."""
    shifted = logits - logits.amax((-2, -1), keepdim=True)
    if epsilon > 0:
        m = shifted.softmax(-2) + epsilon
        m = m / (m.sum(-1, keepdim=True) + epsilon)
        for _ in range(iterations - 1):
            m = m / (m.sum(-2, keepdim=True) + epsilon)
            m = m / (m.sum(-1, keepdim=True) + epsilon)
        return m
    if float((-shifted).max()) > (300 if logits.dtype == torch.float64 else 30):
        # exp would underflow: the same iterations on log-values
        log_m = shifted
        for _ in range(iterations):
            log_m = log_m - log_m.logsumexp(-2, keepdim=True)
            log_m = log_m - log_m.logsumexp(-1, keepdim=True)
        return log_m.exp()
    m = shifted.exp()
    for _ in range(iterations):
        m = m / m.sum(-2, keepdim=True)
        m = m / m.sum(-1, keepdim=True)
    return m


def coefficient_type(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


class ManifoldConnection(nn.Module):
    """mHC (spec §5) in DeepSeek-V4's arrangement: fn [n²+2n, n·d] (rows: pre, post, comb[src][dst]), base, scale."""

    def __init__(self, n, d, iterations, definition):
        super().__init__()
        width = n * n + 2 * n
        self.fn = nn.Parameter(torch.zeros(width, n * d))
        self.base = nn.Parameter(torch.zeros(width))
        self.scale = nn.Parameter(torch.zeros(3))
        self.n, self.iterations = n, iterations
        self.epsilon = DEEPSEEK_EPSILON if definition == "deepseek-v4" else 0.0

    def coefficients(self, x):
        b, t, n, d = x.shape
        v = x.to(coefficient_type(x)).reshape(b, t, n * d)
        mixes = v.matmul(self.fn.t()) * v.square().mean(-1, keepdim=True).add(RMS_EPSILON).rsqrt()
        pre = (self.scale[0] * mixes[..., :n] + self.base[:n]).sigmoid() + self.epsilon
        post = (self.scale[1] * mixes[..., n:2 * n] + self.base[n:2 * n]).sigmoid() * 2
        comb = (self.scale[2] * mixes[..., 2 * n:] + self.base[2 * n:]).view(b, t, n, n)
        return pre, post, sinkhorn(comb.transpose(-1, -2), self.iterations, self.epsilon)   # H_res = combᵀ


class HyperConnection(nn.Module):
    """HC (spec §4): static [Am | Ar], B; dynamic adds tanh-gated terms from each stream's LayerNorm."""

    def __init__(self, n, d, dynamic, use_tanh):
        super().__init__()
        self.static_alpha = nn.Parameter(torch.zeros(n, n + 1))
        self.static_beta = nn.Parameter(torch.ones(n))
        self.dynamic, self.use_tanh = dynamic, use_tanh
        if dynamic:
            self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPSILON)
            self.dynamic_alpha = nn.Parameter(torch.zeros(d, n + 1))
            self.dynamic_beta = nn.Parameter(torch.zeros(d))
            self.alpha_scale = nn.Parameter(torch.tensor(0.01))
            self.beta_scale = nn.Parameter(torch.tensor(0.01))

    def coefficients(self, x):
        b, t, n, _ = x.shape
        if self.dynamic:
            xn = self.norm(x.to(coefficient_type(x)))
            a, c = xn.matmul(self.dynamic_alpha), xn.matmul(self.dynamic_beta)
            if self.use_tanh:
                a, c = a.tanh(), c.tanh()
            alpha, beta = self.alpha_scale * a + self.static_alpha, self.beta_scale * c + self.static_beta
        else:
            alpha = self.static_alpha.to(coefficient_type(x)).expand(b, t, n, n + 1)
            beta = self.static_beta.to(coefficient_type(x)).expand(b, t, n)
        return alpha[..., 0], beta, alpha[..., 1:].transpose(-1, -2)   # HC applies Arᵀ


class ManifoldVariant(nn.Module):
    """mHC's variants, in our own names (DeepSeek has no layout for them): mhc-static (biases only), mhc-lite (H_res a
    convex mix of the n! permutation matrices), the paper's ablations mhc-res-only (H_pre = 1/n, H_post = 1) and
    mhc-res-pre (H_post = 1). φ's columns: pre, post, res, each only when that map is learned."""

    def __init__(self, kind, n, d, iterations):
        super().__init__()
        self.n, self.iterations = n, iterations
        dynamic, self.lite = kind != "mhc-static", kind == "mhc-lite"
        learned = [("pre", n)] * (kind != "mhc-res-only") + [("post", n)] * (kind in ("mhc-static", "mhc-lite"))
        self.res_width = math.factorial(n) if self.lite else n * n
        self.maps = learned + [("res", self.res_width)]
        for name, width in self.maps:
            setattr(self, f"bias_{name}", nn.Parameter(torch.zeros(width)))
            if dynamic:
                setattr(self, f"alpha_{name}", nn.Parameter(torch.tensor(0.01)))
        self.phi = nn.Parameter(torch.zeros(n * d, sum(w for _, w in self.maps))) if dynamic else None
        if self.lite:
            # P_k row-major, permutations in lexicographic order (the identity first): entry (i, j) = 1 when p[i] = j
            rows = [[float(p[e // n] == e % n) for e in range(n * n)] for p in itertools.permutations(range(n))]
            self.register_buffer("permutations", torch.tensor(rows), persistent=False)

    def coefficients(self, x):
        b, t, n, d = x.shape
        dtype = coefficient_type(x)
        if self.phi is not None:
            v = x.to(dtype).reshape(b, t, n * d)
            projected = v.matmul(self.phi) * v.square().mean(-1, keepdim=True).add(RMS_EPSILON).rsqrt()
        logits, offset = {}, 0
        for name, width in self.maps:
            bias = getattr(self, f"bias_{name}")
            logits[name] = bias.to(dtype).expand(b, t, width) if self.phi is None \
                else getattr(self, f"alpha_{name}") * projected[..., offset:offset + width] + bias
            offset += width
        pre = logits["pre"].sigmoid() if "pre" in logits else torch.full((b, t, n), 1.0 / n, dtype=dtype, device=x.device)
        post = logits["post"].sigmoid() * 2 if "post" in logits else torch.ones(b, t, n, dtype=dtype, device=x.device)
        res = logits["res"].softmax(-1).matmul(self.permutations.to(dtype)).view(b, t, n, n) if self.lite \
            else sinkhorn(logits["res"].reshape(b, t, n, n), self.iterations, 0.0)
        return pre, post, res


def make_connection(connection, d):
    kind, n = connection.get("kind", "mhc"), connection.get("streams", 4)
    if kind == "residual":
        return None
    if kind == "mhc":
        return ManifoldConnection(n, d, connection.get("sinkhorn_iterations", 20), connection.get("definition", "paper"))
    if kind in ("hc", "hc-static"):
        return HyperConnection(n, d, kind == "hc", connection.get("use_tanh", True))
    if kind in ("mhc-static", "mhc-lite", "mhc-res-only", "mhc-res-pre"):
        return ManifoldVariant(kind, n, d, connection.get("sinkhorn_iterations", 20))
    raise ValueError(f"connection kind '{kind}' is not in the twin: it covers {', '.join(KINDS)}")


def connect(connection, x, branch):
    """One sub-layer: x + F(x) for the residual, else H_res·x + H_postᵀ·F(H_pre·x) (spec §2)."""
    if connection is None:
        return x + branch(x.squeeze(-2)).unsqueeze(-2)
    pre, post, res = (c.to(x.dtype) for c in connection.coefficients(x))
    y = branch(pre.unsqueeze(-2).matmul(x).squeeze(-2))
    return res.matmul(x) + post.unsqueeze(-1) * y.unsqueeze(-2)


class Layer(nn.Module):
    def __init__(self, m):
        super().__init__()
        d, connection = m["d_model"], m.get("connection", {})
        hidden = m.get("mlp_hidden", 0) or (8 * d // 3 + 7) // 8 * 8
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d), RMSNorm(d)
        self.self_attn = Attention(d, m["heads"], m["seq_len"], m.get("dropout", 0.0))
        self.mlp = SwiGLU(d, hidden, m.get("dropout", 0.0))
        self.attn_hc, self.ffn_hc = make_connection(connection, d), make_connection(connection, d)

    def forward(self, x):
        x = connect(self.attn_hc, x, lambda u: self.self_attn(self.input_layernorm(u)))
        return connect(self.ffn_hc, x, lambda u: self.mlp(self.post_attention_layernorm(u)))


class Body(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.embed_tokens = nn.Embedding(m["vocab_size"], m["d_model"])
        self.layers = nn.ModuleList(Layer(m) for _ in range(m["layers"]))
        self.norm = RMSNorm(m["d_model"])


class Gpt(nn.Module):
    """mHC.NET's GPT: embedding → n streams → (attention, MLP) sub-layers → sum of streams → RMSNorm → head."""

    def __init__(self, model_config):
        super().__init__()
        self.config = model_config
        self.streams = model_config.get("connection", {}).get("streams", 4)
        self.model = Body(model_config)
        self.lm_head = None if model_config.get("tie_embeddings", True) else nn.Linear(model_config["d_model"], model_config["vocab_size"], bias=False)

    def forward(self, ids):
        h = self.model.embed_tokens(ids)
        x = h.unsqueeze(-2).expand(*h.shape[:2], self.streams, h.shape[-1]).contiguous()
        for layer in self.model.layers:
            x = layer(x)
        h = self.model.norm(x.sum(-2))
        return self.lm_head(h) if self.lm_head is not None else h.matmul(self.model.embed_tokens.weight.t())

    def loss(self, ids, targets):
        logits = self(ids)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def run_config(metadata, path):
    """The run config `mhc` stores in a weight file's metadata (`mhcnet.config`)."""
    if "mhcnet.config" not in metadata:
        raise ValueError(f"weight file '{path}' carries no model config (no mhcnet.config in its metadata): export it with `mhc export`")
    if metadata.get("mhcnet.layout", "hf") != "hf":
        raise ValueError(f"weight file '{path}' is in the {metadata['mhcnet.layout']} layout; the twin reads the hf layout (mhc export --layout hf)")
    config = json.loads(metadata["mhcnet.config"])
    if config.get("task", "language") != "language":
        raise ValueError(f"weight file '{path}' holds a {config['task']} model; the twin is the language model (GPT)")
    return config


def load(path, dtype=torch.float32):
    """The model of a weight file written by `mhc export` (or `save`), its run config and metadata."""
    tensors, metadata = read_safetensors(path)
    config = run_config(metadata, path)
    try:
        model = Gpt(config["model"]).to(dtype)
        model.load_state_dict({name: value.to(dtype) for name, value in tensors.items()}, strict=True)
    except (KeyError, ValueError, RuntimeError) as e:
        raise ValueError(f"weight file '{path}' does not fit the twin: {e}") from e
    return model, config, metadata


def save(model, path, metadata):
    """Writes the model in the hf layout (float32), with `metadata` (the run config among it), loadable by `mhc --weights`."""
    state = {name: value.float() for name, value in model.state_dict().items()}
    write_safetensors(path, state, dict(metadata, **{"format": "pt", "mhcnet.format_version": "1", "mhcnet.layout": "hf"}))

# ---- data: the text as `mhc` tokenises it.


def text_tokens(path, config):
    """Every token of a text file, or of the .txt files under a folder (ordinal order, a blank line between them)."""
    data = config.get("data", {})
    tokenizer = "byte" if data.get("path") is None else data.get("tokenizer") or "gpt2"
    if tokenizer != "byte":
        raise ValueError(f"the model was trained with the {tokenizer} tokenizer; the twin reads byte-level models only (train with --tokenizer byte)")
    if os.path.isdir(path):
        files = sorted(os.path.join(root, f) for root, _, names in os.walk(path) for f in names if f.endswith(".txt"))
    elif os.path.isfile(path):
        files = [path]
    else:
        raise ValueError(f"data path '{path}' does not exist")
    texts = []
    for file in files:
        try:
            with open(file, "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"data file '{file}' cannot be read as UTF-8 text: {e}") from e
        texts.append(text[1:] if text.startswith("\ufeff") else text)
    return list("\n\n".join(texts).encode("utf-8")), os.path.basename(files[0]) if len(files) == 1 else f"{len(files)} files under {path}"


@torch.no_grad()
def whole_text_loss(model, tokens, seq_len, batch_size):
    """Mean loss over the text cut into consecutive windows of seq_len (a shorter last one): every token but the
    first predicted once, as `mhc eval --data` does. Returns (loss, tokens predicted, windows)."""
    model.eval()
    predicted = len(tokens) - 1
    full, rest = divmod(predicted, seq_len)
    starts = [[w * seq_len for w in range(first, min(first + batch_size, full))] for first in range(0, full, batch_size)]
    batches = [(s, seq_len) for s in starts] + ([([full * seq_len], rest)] if rest else [])
    total = 0.0
    for window_starts, length in batches:
        rows = torch.tensor([tokens[s:s + length + 1] for s in window_starts])
        total += float(model.loss(rows[:, :-1], rows[:, 1:])) * len(window_starts) * length
    return total / predicted, predicted, full + (1 if rest else 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("eval", help="validation loss of a weight file on a whole text, as `mhc eval --weights --data`")
    evaluate.add_argument("--weights", required=True, help="a safetensors file in the hf layout with the run config (mhc export)")
    evaluate.add_argument("--data", required=True, help="a UTF-8 text file or a folder of .txt files")
    evaluate.add_argument("--max-tokens", type=int, help="evaluate only the first N tokens")
    args = parser.parse_args(argv)
    try:
        model, config, _ = load(args.weights)
        tokens, name = text_tokens(args.data, config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4 if "weight file" in str(e) else 3
    used = tokens[:args.max_tokens] if args.max_tokens else tokens
    if len(used) < 2:
        print(f"error: a text of {len(used)} tokens has nothing to predict: at least 2 are needed", file=sys.stderr)
        return 3
    print(f"data: {name}, byte tokens: {len(tokens):,}, {'all evaluated' if len(used) == len(tokens) else f'the first {len(used):,} evaluated'}")
    seq_len = config["model"]["seq_len"]
    loss, predicted, windows = whole_text_loss(model, used, seq_len, config.get("training", {}).get("batch_size", 16))
    print(f"weights '{args.weights}' (safetensors, hf layout), twin in PyTorch {torch.__version__}")
    print(f"validation loss {loss:.6f} nats/token, perplexity {math.exp(loss):.2f} "
          f"({predicted:,} tokens predicted in {windows:,} consecutive windows of up to {seq_len})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
