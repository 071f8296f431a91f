#!/usr/bin/env python3
"""PyTorch reference for `turbovid-engine bench`: the same stages on the same checkpoint folder.

Our own implementation of Wan2.1 T2V inference in plain PyTorch (no diffusers / wan imports), read
from docs/model-math.md (§3–§5, SLA §9): the umT5-XXL encoder, the Wan2.1 DiT (patch
embedding, time/text embeddings, blocks with q/k RMSNorm + 3-D RoPE, SDPA self-attention or SLA,
cross-attention, GELU-tanh FFN, modulation, head, unpatchify) and the Wan2.1 VAE decoder (causal
3-D convolutions decoding one latent frame at a time with the 2-frame cache). bf16 weights, bf16
autocast for the DiT (time path, norms, head and residual stream in fp32), bf16 T5 and VAE.

It loads the safetensors files that `turbovid-engine bench --random-weights` writes (header parsed
with json, tensors through torch.frombuffer over a private mmap), times each stage with
torch.cuda.synchronize() after a warm-up, and writes the same table and JSON as the engine, so
bench/h100.sh can print both side by side. With --check it also runs its stages on the inputs the
engine dumped (`bench --dump`) and reports the relative L2 distance of the outputs.

Runs on torch 2.11 + CUDA (the GPU machine) and, for a quick check of the maths, on torch >= 1.13
on the CPU with --device cpu --dtype fp32. One file on purpose (longer than the house 600 lines):
it is carried to the GPU machine and run there as is, with nothing but torch.
"""
import argparse
import contextlib
import json
import math
import mmap
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64,
          "I8": torch.int8, "U8": torch.uint8, "I32": torch.int32, "I64": torch.int64}
VAE_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
            0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
VAE_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
           3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]
RESOLUTIONS = {("480p", "16:9"): (832, 480), ("480p", "9:16"): (480, 832), ("480p", "1:1"): (640, 640),
               ("720p", "16:9"): (1280, 720), ("720p", "9:16"): (720, 1280), ("720p", "1:1"): (960, 960)}


# ----------------------------------------------------------------------------------------------
# Files

def read_safetensors(path):
    """{name: CPU tensor} viewing a private (copy-on-write) mapping of `path`; nothing is copied."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        size = torch.empty(0, dtype=dt).element_size()
        count = (end - begin) // size
        if count == 0:
            out[name] = torch.empty(e["shape"], dtype=dt)
            continue
        out[name] = torch.frombuffer(mm, dtype=dt, count=count, offset=8 + n + begin).reshape(e["shape"])
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    names = {v: k for k, v in DTYPES.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def load_weights(path, device, dtype, keep_f32=()):
    """All tensors to `device`: floating ones as `dtype`, except names containing a `keep_f32` part."""
    out = {}
    for name, t in read_safetensors(path).items():
        if t.is_floating_point():
            want = torch.float32 if any(k in name for k in keep_f32) else dtype
            out[name] = t.to(device=device, dtype=want)
        else:
            out[name] = t.to(device)
    return out


# ----------------------------------------------------------------------------------------------
# Attention helpers

def sdpa(q, k, v, mask=None, scale=None):
    """[B, N, L, D] attention; a plain softmax fallback where torch has no SDPA (1.13)."""
    if hasattr(F, "scaled_dot_product_attention"):
        if scale is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    s = torch.matmul(q.float(), k.float().transpose(-1, -2)) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if mask is not None:
        s = s + mask.float()
    return torch.matmul(s.softmax(-1), v.float()).to(q.dtype)


def sdpa_backend(name):
    """Context preferring one SDPA backend (torch >= 2.3), falling back to the others when it
    cannot take a call; `default` leaves torch's own choice."""
    if name == "default":
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return contextlib.nullcontext()
    order = ["cudnn", "flash", "efficient", "math"]
    order.remove(name)
    table = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}
    backends = [getattr(SDPBackend, table[n]) for n in [name] + order]
    try:
        return sdpa_kernel(backends, set_priority=True)
    except TypeError:  # torch < 2.6: no priority, the first one only
        return sdpa_kernel(backends[:1])


def sla_selected_blocks(n_k, topk):
    return max(0, min(n_k, int(topk * n_k)))  # SLA/utils.py: int(topk · n_k), same for every row


def sla_attention(q, k, v, proj_w, proj_b, topk, block_q=128, block_k=64, chunk_bytes=4 << 30):
    """SLA (docs/model-math.md §9): q, k, v [L, N, D] after RoPE → [L, N, D].

    Block map from mean-pooled q and mean-pooled smoothed k (no scale, no softmax), the same top-k
    count for every query block; sparse softmax over the gathered selected key blocks (SDPA over
    [N·n_q] batches of one query block each); plus proj_l of the global softmax-feature linear
    branch. Padded keys of a partial tail block are masked through one extra head dimension:
    q' = [q, 1, 0…], k' = [k, -30000 for padding else 0, 0…], so the fused SDPA kernels still run.
    """
    L, N, D = q.shape
    dt = q.dtype
    nq, nk = -(-L // block_q), -(-L // block_k)
    ksel = sla_selected_blocks(nk, topk)
    qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [N, L, D]

    def pool(x, b, n):
        s = F.pad(x.float(), (0, 0, 0, n * b - L)).view(N, n, b, D).sum(2)
        cnt = torch.full((n, 1), float(b), device=x.device)
        cnt[-1] = L - (n - 1) * b
        return (s / cnt).to(dt)

    ks = kh.float() - kh.float().mean(1, keepdim=True)
    score = torch.matmul(pool(qh, block_q, nq), pool(ks, block_k, nk).transpose(1, 2))  # [N, nq, nk]
    idx = score.topk(ksel, dim=-1).indices  # [N, nq, ksel]

    masked = L % block_k != 0
    dp = D + 8 if masked else D
    qp = q.new_zeros(N, nq * block_q, dp)
    qp[:, :L, :D] = qh
    kp = k.new_zeros(N, nk * block_k, dp)
    kp[:, :L, :D] = kh
    vp = v.new_zeros(N, nk * block_k, dp)
    vp[:, :L, :D] = vh
    if masked:
        qp[:, :, D] = 1
        kp[:, L:, D] = -30000
    keys = (idx[..., None] * block_k + torch.arange(block_k, device=q.device)).reshape(N, nq, ksel * block_k)
    out = q.new_empty(N, nq * block_q, D)
    per_head = 2 * nq * ksel * block_k * dp * qp.element_size()
    hc = max(1, min(N, chunk_bytes // max(1, per_head)))
    scale = D ** -0.5
    for h0 in range(0, N, hc):
        h1 = min(N, h0 + hc)
        heads = torch.arange(h0, h1, device=q.device)[:, None, None]
        kg = kp[heads, keys[h0:h1]].view((h1 - h0) * nq, 1, ksel * block_k, dp)
        vg = vp[heads, keys[h0:h1]].view((h1 - h0) * nq, 1, ksel * block_k, dp)
        qb = qp[h0:h1].view((h1 - h0) * nq, 1, block_q, dp)
        o = sdpa(qb, kg, vg, scale=scale)
        out[h0:h1] = o.view(h1 - h0, nq * block_q, dp)[..., :D]
        del kg, vg, o
    o_s = out[:, :L]
    # Global linear branch over all keys, φ = softmax over the head dim (bf16 tensor ops).
    fq, fk = qh.softmax(-1), kh.softmax(-1)
    kv = torch.matmul(fk.transpose(1, 2), vh)  # [N, D, D]
    ksum = fk.sum(1, keepdim=True)  # [N, 1, D]
    o_l = torch.matmul(fq, kv) / (1e-5 + (fq * ksum).sum(-1, keepdim=True))
    o_l = F.linear(o_l, proj_w.to(o_l.dtype), proj_b.to(o_l.dtype))
    return (o_s + o_l).to(dt).transpose(0, 1)


# ----------------------------------------------------------------------------------------------
# umT5-XXL encoder (docs/model-math.md §4)

class UmT5:
    def __init__(self, weights, cfg):
        self.w, self.cfg = weights, cfg
        self.eps = 1e-6

    def norm(self, x, weight):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * weight

    def bucket(self, L, device):
        rel = torch.arange(L, device=device)[None, :] - torch.arange(L, device=device)[:, None]  # k − q
        half = self.cfg["num_buckets"] // 2
        ret = (rel > 0).long() * half
        n = rel.abs()
        exact = half // 2
        large = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(self.cfg["max_distance"] / exact)
                         * (half - exact)).long()
        large = large.clamp(max=half - 1)
        return ret + torch.where(n < exact, n, large)

    @torch.no_grad()
    def encode(self, ids):
        c, w = self.cfg, self.w
        L, H = ids.numel(), c["num_heads"]
        dh = c["dim_attn"] // H
        x = w["token_embedding.weight"][ids]
        buckets = self.bucket(L, ids.device)
        for i in range(c["num_layers"]):
            p = f"blocks.{i}."
            h = self.norm(x, w[p + "norm1.weight"])
            q = F.linear(h, w[p + "attn.q.weight"]).view(L, H, dh).transpose(0, 1)[None]
            k = F.linear(h, w[p + "attn.k.weight"]).view(L, H, dh).transpose(0, 1)[None]
            v = F.linear(h, w[p + "attn.v.weight"]).view(L, H, dh).transpose(0, 1)[None]
            bias = w[p + "pos_embedding.embedding.weight"][buckets].permute(2, 0, 1)[None].to(q.dtype)
            a = sdpa(q, k, v, mask=bias, scale=1.0)  # T5: no 1/sqrt(d) scaling
            x = x + F.linear(a[0].transpose(0, 1).reshape(L, c["dim_attn"]), w[p + "attn.o.weight"])
            h = self.norm(x, w[p + "norm2.weight"])
            g = F.gelu(F.linear(h, w[p + "ffn.gate.0.weight"]), approximate="tanh")
            x = x + F.linear(F.linear(h, w[p + "ffn.fc1.weight"]) * g, w[p + "ffn.fc2.weight"])
        return self.norm(x, w["norm.weight"])


# ----------------------------------------------------------------------------------------------
# Wan2.1 DiT (docs/model-math.md §3)

class WanDit:
    def __init__(self, weights, cfg, dtype):
        self.w, self.cfg, self.dtype = weights, cfg, dtype
        self.D, self.N = cfg["dim"], cfg["num_heads"]
        self.d = self.D // self.N
        self.eps = cfg.get("eps", 1e-6)
        self.attention = "dense"
        self.topk = 0.1
        self.sdpa = "default"
        self.rope = {}
        self.blocks = []
        for i in range(cfg["num_layers"]):
            p = f"blocks.{i}."
            self.blocks.append({n[len(p):]: t for n, t in weights.items() if n.startswith(p)})
        self.block_fn = self.block

    def rope_tables(self, f, h, w, device):
        key = (f, h, w)
        if key not in self.rope:
            pairs = self.d // 2
            ph = pairs // 3
            pt = pairs - 2 * ph
            tok = torch.arange(f * h * w, dtype=torch.float64)
            pos = [torch.div(tok, h * w, rounding_mode="floor"), torch.div(tok, w, rounding_mode="floor") % h, tok % w]
            parts = []
            for axis, n in enumerate((pt, ph, ph)):
                theta = 10000.0 ** (-2.0 * torch.arange(n, dtype=torch.float64) / (2 * n))
                parts.append(pos[axis][:, None] * theta[None, :])
            ang = torch.cat(parts, 1)
            self.rope[key] = (ang.cos().float().to(device)[:, None, :], ang.sin().float().to(device)[:, None, :])
        return self.rope[key]

    @staticmethod
    def linear(x, w, name, act=None):
        y = F.linear(x, w[name + ".weight"], w.get(name + ".bias"))
        return F.gelu(y, approximate="tanh") if act == "gelu" else y

    def rms(self, x, weight):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * weight

    @staticmethod
    def apply_rope(x, cos, sin):  # x [L, N, d] fp32, interleaved pairs
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), -1).flatten(2)

    def autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if torch.cuda.is_available() else "cpu", dtype=self.dtype)

    @torch.no_grad()
    def prepare_context(self, context):
        """Text MLP on the context zero-padded to text_len, then every block's cross K/V (cached)."""
        c = self.cfg
        ctx = context.new_zeros(c["text_len"], c["text_dim"])
        ctx[: context.shape[0]] = context
        kv = []
        with self.autocast():
            e = self.linear(self.linear(ctx.to(self.dtype), self.w, "text_embedding.0", "gelu"), self.w,
                            "text_embedding.2")
            for bw in self.blocks:
                k = self.rms(self.linear(e, bw, "cross_attn.k"), bw["cross_attn.norm_k.weight"])
                v = self.linear(e, bw, "cross_attn.v")
                kv.append((k.to(self.dtype).view(-1, self.N, self.d).transpose(0, 1)[None],
                           v.to(self.dtype).view(-1, self.N, self.d).transpose(0, 1)[None]))
        return kv

    def time_embedding(self, t, device):
        half = self.cfg["freq_dim"] // 2
        omega = 10000.0 ** (-torch.arange(half, dtype=torch.float64) / half)
        s = torch.cat([torch.cos(t * omega), torch.sin(t * omega)]).float().to(device)[None]
        w = self.w
        lin = lambda x, n: F.linear(x, w[n + ".weight"].float(), w[n + ".bias"].float())  # noqa: E731
        e = lin(F.silu(lin(s, "time_embedding.0")), "time_embedding.2")
        e0 = lin(F.silu(e), "time_projection.1").view(6, self.D)
        return e[0], e0

    def self_attention(self, bw, a, cos, sin):
        L = a.shape[0]
        q = self.rms(self.linear(a, bw, "self_attn.q"), bw["self_attn.norm_q.weight"]).float().view(L, self.N, self.d)
        k = self.rms(self.linear(a, bw, "self_attn.k"), bw["self_attn.norm_k.weight"]).float().view(L, self.N, self.d)
        v = self.linear(a, bw, "self_attn.v").view(L, self.N, self.d)
        q = self.apply_rope(q, cos, sin).to(self.dtype)
        k = self.apply_rope(k, cos, sin).to(self.dtype)
        v = v.to(self.dtype)
        if self.attention == "sla":
            lp = "self_attn.attn_op.local_attn.proj_l."
            o = sla_attention(q, k, v, bw[lp + "weight"], bw[lp + "bias"], self.topk)
        else:
            with sdpa_backend(self.sdpa):
                o = sdpa(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None])[0].transpose(0, 1)
        return self.linear(o.reshape(L, self.D), bw, "self_attn.o")

    def block(self, bw, x, e0, cos, sin, ctx_k, ctx_v):
        """One block; bw holds its tensors by name without the `blocks.i.` prefix (so that
        torch.compile sees the same graph for every block)."""
        D, eps = self.D, self.eps
        m = bw["modulation"].float()[0] + e0  # [6, D]: shift/scale/gate SA, then FFN
        a = F.layer_norm(x, (D,), eps=eps) * (1 + m[1]) + m[0]
        x = x + self.self_attention(bw, a, cos, sin).float() * m[2]
        c = F.layer_norm(x, (D,), bw["norm3.weight"].float(), bw["norm3.bias"].float(), eps)
        q = self.rms(self.linear(c, bw, "cross_attn.q"), bw["cross_attn.norm_q.weight"]).to(self.dtype)
        L = x.shape[0]
        o = sdpa(q.view(L, self.N, self.d).transpose(0, 1)[None], ctx_k, ctx_v)[0].transpose(0, 1)
        x = x + self.linear(o.reshape(L, D), bw, "cross_attn.o").float()
        b = F.layer_norm(x, (D,), eps=eps) * (1 + m[4]) + m[3]
        f = self.linear(self.linear(b, bw, "ffn.0", "gelu"), bw, "ffn.2")
        return x + f.float() * m[5]

    @torch.no_grad()
    def forward(self, x, t, ctx):
        """x: latent [C, T, H, W] fp32 → velocity [C, T, H, W] fp32."""
        C, T, H, W = x.shape
        hg, wg = H // 2, W // 2
        L = T * hg * wg
        patches = x.view(C, T, hg, 2, wg, 2).permute(1, 2, 4, 0, 3, 5).reshape(L, C * 4)
        cos, sin = self.rope_tables(T, hg, wg, x.device)
        e, e0 = self.time_embedding(float(t), x.device)
        pe = self.w["patch_embedding.weight"].reshape(self.D, -1)
        with self.autocast():
            h = F.linear(patches.to(self.dtype), pe, self.w["patch_embedding.bias"]).float()
            for i, bw in enumerate(self.blocks):
                h = self.block_fn(bw, h, e0, cos, sin, ctx[i][0], ctx[i][1])
        hm = self.w["head.modulation"].float()[0] + e  # [2, D]: shift, scale
        a = F.layer_norm(h, (self.D,), eps=self.eps) * (1 + hm[1]) + hm[0]
        out = F.linear(a, self.w["head.head.weight"].float(), self.w["head.head.bias"].float())
        co = self.cfg["out_dim"]
        return out.view(T, hg, wg, 2, 2, co).permute(5, 0, 1, 3, 2, 4).reshape(co, T, H, W)


# ----------------------------------------------------------------------------------------------
# Wan2.1 VAE decoder (docs/model-math.md §5), streaming one latent frame at a time with the
# causal cache

class WanVaeDecoder:
    def __init__(self, weights, cfg, dtype):
        self.w, self.dtype = weights, dtype
        dim, mult = cfg.get("dim", 96), cfg.get("dim_mult", [1, 2, 4, 4])
        self.z = cfg.get("z_dim", 16)
        self.nres = cfg.get("num_res_blocks", 2)
        self.temporal = cfg.get("temporal_downsample", [False, True, True])
        self.dims = [dim * mult[-1]] + [dim * m for m in reversed(mult)]
        self.mult = mult

    def cconv(self, x, name, cache):
        """Causal conv; 3-frame kernels see the last 2 input frames of earlier chunks (zeros first)."""
        w, b = self.w[name + ".weight"], self.w[name + ".bias"]
        kt, kh, kw = w.shape[2:]
        if kt > 1:
            prev = cache.get(name)
            if prev is None:
                prev = x.new_zeros(x.shape[0], x.shape[1], kt - 1, x.shape[3], x.shape[4])
            x = torch.cat([prev, x], 2)
            cache[name] = x[:, :, -(kt - 1):].clone()
        return F.conv3d(x, w, b, padding=(0, kh // 2, kw // 2))

    def rms(self, x, name):
        g = self.w[name]
        return F.normalize(x, dim=1) * (x.shape[1] ** 0.5) * g

    def res(self, x, p, cache):
        h = self.cconv(F.silu(self.rms(x, p + ".residual.0.gamma")), p + ".residual.2", cache)
        h = self.cconv(F.silu(self.rms(h, p + ".residual.3.gamma")), p + ".residual.6", cache)
        sc = self.cconv(x, p + ".shortcut", cache) if p + ".shortcut.weight" in self.w else x
        return sc + h

    def attention(self, x, p):
        b, c, t, h, w = x.shape
        f = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        y = self.rms(f, p + ".norm.gamma")
        qkv = F.conv2d(y, self.w[p + ".to_qkv.weight"], self.w[p + ".to_qkv.bias"])
        qkv = qkv.view(b * t, 3, c, h * w).permute(1, 0, 3, 2)[:, :, None]  # 3 × [bt, 1, hw, c]
        o = sdpa(qkv[0], qkv[1], qkv[2])[:, 0].transpose(1, 2).reshape(b * t, c, h, w)
        o = F.conv2d(o, self.w[p + ".proj.weight"], self.w[p + ".proj.bias"])
        return (f + o).view(b, t, c, h, w).permute(0, 2, 1, 3, 4)

    def upsample(self, x, p, temporal, cache, first):
        if temporal and not first:  # the first chunk skips time_conv; the second then sees zeros
            tc = self.cconv(x, p + ".time_conv", cache)
            b, c2, t, h, w = tc.shape
            c = c2 // 2
            x = torch.stack((tc[:, :c], tc[:, c:]), 3).reshape(b, c, 2 * t, h, w)
        b, c, t, h, w = x.shape
        f = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        f = f[:, :, :, None, :, None].expand(b * t, c, h, 2, w, 2).reshape(b * t, c, 2 * h, 2 * w)  # nearest ×2
        f = F.conv2d(f, self.w[p + ".resample.1.weight"], self.w[p + ".resample.1.bias"], padding=1)
        return f.view(b, t, f.shape[1], 2 * h, 2 * w).permute(0, 2, 1, 3, 4)

    def decode_chunk(self, x, cache, first):
        x = self.cconv(x, "decoder.conv1", cache)
        x = self.res(x, "decoder.middle.0", cache)
        x = self.attention(x, "decoder.middle.1")
        x = self.res(x, "decoder.middle.2", cache)
        idx, stages = 0, len(self.mult)
        for i in range(stages):
            for _ in range(self.nres + 1):
                x = self.res(x, f"decoder.upsamples.{idx}", cache)
                idx += 1
            if i + 1 != stages:
                x = self.upsample(x, f"decoder.upsamples.{idx}", self.temporal[stages - 2 - i], cache, first)
                idx += 1
        x = F.silu(self.rms(x, "decoder.head.0.gamma"))
        return self.cconv(x, "decoder.head.2", cache)

    @torch.no_grad()
    def decode(self, z):
        """Normalised latent [z, T, H, W] fp32 → video [3, 1+4(T-1), 8H, 8W] fp32 in [-1, 1]."""
        mean = torch.tensor(VAE_MEAN, device=z.device)[:, None, None, None]
        std = torch.tensor(VAE_STD, device=z.device)[:, None, None, None]
        x = (z * std + mean).to(self.dtype)[None]
        x = F.conv3d(x, self.w["conv2.weight"], self.w["conv2.bias"])
        cache, out = {}, []
        for i in range(x.shape[2]):
            out.append(self.decode_chunk(x[:, :, i:i + 1], cache, first=i == 0))
        return torch.cat(out, 2)[0].float().clamp_(-1, 1)


# ----------------------------------------------------------------------------------------------
# FLOP counts (engine/models/flops.cc; 2 FLOP per MAC)

def dit_flops(c, T, H, W, sla_topk=None, block_q=128, block_k=64, text_len=None):
    L = T * (H // 2) * (W // 2)
    d, f, N, hd, layers = c["dim"], c["ffn_dim"], c["num_heads"], c["dim"] // c["num_heads"], c["num_layers"]
    tl = text_len or c["text_len"]
    g = lambda m, n, k: 2.0 * m * n * k  # noqa: E731
    block_linear = g(L, d, d) * 6 + g(tl, d, d) * 2 + g(L, f, d) + g(L, d, f)
    embed = (g(L, d, c["in_dim"] * 4) + g(tl, d, c["text_dim"]) + g(tl, d, d) + g(1, d, c["freq_dim"]) +
             g(1, d, d) + g(1, 6 * d, d) + g(L, c["out_dim"] * 4, d))
    cross = 4.0 * L * tl * hd * N * layers
    dense = 4.0 * L * L * hd * N * layers
    if sla_topk is None:
        self_attn = dense
    else:
        nq, nk = -(-L // block_q), -(-L // block_k)
        keys = min(L, sla_selected_blocks(nk, sla_topk) * block_k)
        self_attn = (4.0 * L * keys * hd + (g(hd, hd, L) + g(L, hd, hd) + g(L, 1, hd) + g(L, hd, hd)) +
                     g(nq, nk, hd)) * N * layers
    total = block_linear * layers + embed + cross + self_attn
    return total, total - self_attn + dense


def t5_flops(c, L):
    g = lambda m, n, k: 2.0 * m * n * k  # noqa: E731
    return (g(L, c["dim_attn"], c["dim"]) * 3 + g(L, c["dim"], c["dim_attn"]) + g(L, c["dim_ffn"], c["dim"]) * 2 +
            g(L, c["dim"], c["dim_ffn"]) + 4.0 * L * L * c["dim_attn"]) * c["num_layers"]


def vae_flops(c, T, H, W):
    dim, mult, z = c.get("dim", 96), c.get("dim_mult", [1, 2, 4, 4]), c.get("z_dim", 16)
    nres, temporal = c.get("num_res_blocks", 2), c.get("temporal_downsample", [False, True, True])
    conv = lambda ci, co, taps, pos: 2.0 * ci * co * taps * pos  # noqa: E731
    dims = [dim * mult[-1]] + [dim * m for m in reversed(mult)]
    t, h, w = T, H, W

    def res(ci, co):
        r = conv(ci, co, 27, t * h * w) + conv(co, co, 27, t * h * w)
        return r + (conv(ci, co, 1, t * h * w) if ci != co else 0)
    fl = conv(z, z, 1, t * h * w) + conv(z, dims[0], 27, t * h * w) + 2 * res(dims[0], dims[0])
    hw, ch = h * w, dims[0]
    fl += t * (2.0 * hw * 3 * ch * ch + 2 * 2.0 * hw * hw * ch + 2.0 * hw * ch * ch)
    stages = len(mult)
    for i in range(stages):
        cin = dims[i] // 2 if 1 <= i <= 3 else dims[i]
        for _ in range(nres + 1):
            fl += res(cin, dims[i + 1])
            cin = dims[i + 1]
        if i + 1 == stages:
            break
        cs = dims[i + 1]
        if temporal[stages - 2 - i]:
            fl += conv(cs, 2 * cs, 3, (t - 1) * h * w)
            t = 2 * t - 1
        h, w = 2 * h, 2 * w
        fl += conv(cs, cs // 2, 9, t * h * w)
    return fl + conv(dims[-1], 3, 27, t * h * w)


# ----------------------------------------------------------------------------------------------
# Bench harness: rows, table and JSON in the engine's format (engine/tools/bench_report.h)

class Bench:
    def __init__(self, args, device):
        self.a, self.device, self.rows = args, device, []
        self.is_cuda = device.type == "cuda"

    def sync(self):
        if self.is_cuda:
            torch.cuda.synchronize()

    def reset_peak(self):
        if self.is_cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak(self):
        return torch.cuda.max_memory_allocated() if self.is_cuda else -1

    def row(self, stage, attention="", step=0, **kw):
        r = {"stage": stage, "attention": attention, "step": step, "samples_ms": [], "flop": 0.0,
             "flop_dense_equiv": 0.0, "peak_bytes": -1, "note": "", "error": ""}
        r.update(kw)
        self.rows.append(r)
        return r

    def time(self, row, fn, warmup=None):
        for _ in range(self.a.warmup if warmup is None else warmup):
            fn()
        self.sync()
        self.reset_peak()
        result = None
        for _ in range(self.a.repeat):
            self.sync()
            t0 = time.perf_counter()
            result = fn()
            self.sync()
            row["samples_ms"].append((time.perf_counter() - t0) * 1e3)
        row["peak_bytes"] = self.peak()
        return result

    def fail(self, stage, attention, err):
        self.row(stage, attention, error=f"{type(err).__name__}: {err}"[:500])
        print(f"torch_reference: {stage} {attention} failed: {err}", file=sys.stderr)

    def load(self, stage, fn):
        self.sync()
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001 — reported, the other stages go on
            self.fail(stage, "", err)
            return None
        self.sync()
        self.row(stage, samples_ms=[(time.perf_counter() - t0) * 1e3],
                 peak_bytes=torch.cuda.memory_allocated() if self.is_cuda else -1)
        return result


def median(v):
    s = sorted(v)
    n = len(s)
    return float("nan") if n == 0 else (s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2]))


def add_pipeline_rows(rows):
    shared = {r["stage"]: r for r in rows if not r["attention"] and not r["error"] and r["samples_ms"]}
    for r in [r for r in rows if r["stage"] == "dit_sample_total" and not r["error"]]:
        parts, total = ["dit"], median(r["samples_ms"])
        for s in ("text_encode", "vae_decode", "frames", "mp4_encode"):
            if s in shared:
                total += median(shared[s]["samples_ms"])
                parts.append(s)
        rows.append({"stage": "pipeline", "attention": r["attention"], "step": 0, "samples_ms": [total],
                     "flop": 0.0, "flop_dense_equiv": 0.0, "peak_bytes": -1,
                     "note": "sum of medians: " + " + ".join(parts), "error": ""})


def finish_rows(rows):
    for r in rows:
        s = r["samples_ms"]
        med = median(s)
        r.update(median_ms=med, min_ms=min(s) if s else float("nan"), max_ms=max(s) if s else float("nan"), n=len(s),
                 tflop=r["flop"] / 1e12, tflops=r["flop"] / med / 1e9 if r["flop"] and s else float("nan"),
                 dense_equiv_tflops=r["flop_dense_equiv"] / med / 1e9 if r["flop_dense_equiv"] and s else float("nan"))


def print_table(meta, rows, out=sys.stdout):
    print(f"{meta['impl']} bench: {meta['model']} {meta['width']}x{meta['height']}, {meta['frames']} frames, latent "
          f"{meta['latent']}, {meta['tokens']} DiT tokens, {meta['steps']} steps, {meta['device']}", file=out)
    print(f"warm-up {meta['warmup']}, {meta['repeat']} timed repeat(s); {meta['notes']}", file=out)
    print(f"{'stage':<17} {'attn':<5} {'step':>4} {'median ms':>11} {'min ms':>11} {'max ms':>11} {'TFLOP':>9} "
          f"{'TFLOP/s':>9} {'peak GiB':>8}  note", file=out)
    for r in rows:
        step = str(r["step"]) if r["step"] else ""
        if r["error"]:
            print(f"{r['stage']:<17} {r['attention']:<5} {step:>4} {'-':>11} {'-':>11} {'-':>11} {'-':>9} {'-':>9} "
                  f"{'-':>8}  FAILED: {r['error']}", file=out)
            continue
        if not r["samples_ms"]:
            print(f"{r['stage']:<17} {r['attention']:<5} {step:>4} {'-':>11} {'-':>11} {'-':>11}{'':>30}  {r['note']}",
                  file=out)
            continue
        tf = f"{r['tflop']:.4g}" if r["flop"] else ""
        tfs = f"{r['tflops']:.4g}" if r["flop"] else ""
        pk = f"{r['peak_bytes'] / 2**30:.2f}" if r["peak_bytes"] > 0 else ""
        note = r["note"]
        if r["attention"] == "sla" and r["flop_dense_equiv"]:
            note = (note + "; " if note else "") + f"dense-equiv {r['dense_equiv_tflops']:.4g} TFLOP/s"
        print(f"{r['stage']:<17} {r['attention']:<5} {step:>4} {r['median_ms']:11.2f} {r['min_ms']:11.2f} "
              f"{r['max_ms']:11.2f} {tf:>9} {tfs:>9} {pk:>8}  {note}", file=out)


# ----------------------------------------------------------------------------------------------
# Stages

def rel_l2(a, b):
    a, b = a.double().flatten().cpu(), b.double().flatten().cpu()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def text_ids(n, vocab):
    """`n` deterministic token ids ending in EOS (1): the ids do not change the cost."""
    return [3 + (i * 7919) % max(1, min(vocab, 4096) - 3) for i in range(n - 1)] + [1]


def rcm_times(steps):
    # rCM-like decreasing times in (0, 1); the net timestep is 1000·t (values do not change cost).
    return [0.999 - 0.75 * i / max(1, steps) for i in range(steps)] + [0.0]


def run_dit(b, dit, context, attention, latent_shape, flops):
    a = b.a
    dit.attention = attention
    ctx_row = b.row("dit_context", attention)
    ctx = b.time(ctx_row, lambda: dit.prepare_context(context), warmup=0)
    gen = torch.Generator(device="cpu").manual_seed(a.seed)
    noise = [torch.randn(latent_shape, generator=gen).to(b.device) for _ in range(a.steps + 1)]
    for _ in range(a.warmup):
        dit.forward(noise[0], 999.0, ctx)
    steps = [b.row("dit_forward", attention, i + 1, flop=flops[0], flop_dense_equiv=flops[1] if attention == "sla" else 0.0)
             for i in range(a.steps)]
    total = b.row("dit_sample_total", attention, flop=flops[0] * a.steps, note=f"{a.steps} rCM-like steps incl. update")
    b.sync()
    b.reset_peak()
    ts = rcm_times(a.steps)
    x = None
    for _ in range(a.repeat):
        t_start = time.perf_counter()
        x = noise[0]
        for i in range(a.steps):
            b.sync()
            t0 = time.perf_counter()
            v = dit.forward(x, 1000.0 * ts[i], ctx)
            b.sync()
            steps[i]["samples_ms"].append((time.perf_counter() - t0) * 1e3)
            if not torch.isfinite(v).all():
                raise RuntimeError("dit_forward: non-finite velocity")
            x0 = x - ts[i] * v
            x = (1 - ts[i + 1]) * x0 + ts[i + 1] * noise[i + 1]
        b.sync()
        total["samples_ms"].append((time.perf_counter() - t_start) * 1e3)
    for r in steps + [total]:
        r["peak_bytes"] = b.peak()
    return x


def run_checks(b, dump_dir, t5, dit, vae, dtype):
    """Our stages on the inputs the engine dumped; rel. L2 of the outputs against the engine's."""
    checks = {}
    dump = {k: v.to(b.device) for k, v in read_safetensors(os.path.join(dump_dir, "engine_dump.safetensors")).items()}

    def check(name, fn):
        try:
            checks[name] = fn()
        except Exception as err:  # noqa: BLE001 — reported, the other checks go on
            print(f"torch_reference: check {name} failed: {err}", file=sys.stderr)
            checks[name] = float("nan")
    if t5 is not None and "text.ids" in dump:
        check("text_encode", lambda: rel_l2(t5.encode(dump["text.ids"].long()).float(), dump["text.context"]))
    if dit is not None and "dit.context" in dump:
        ctx = dit.prepare_context(dump["dit.context"].to(dtype))
        for att in ("dense", "sla"):
            if f"dit.{att}.x" in dump:
                def fwd(att=att):
                    dit.attention = att
                    v = dit.forward(dump[f"dit.{att}.x"], float(dump[f"dit.{att}.t"][0]), ctx)
                    return rel_l2(v, dump[f"dit.{att}.v"])
                check(f"dit_forward_{att}", fwd)
    if vae is not None and "vae.z" in dump:
        check("vae_decode", lambda: rel_l2(vae.decode(dump["vae.z"]), dump["vae.video"].clamp(-1, 1)))
    return checks


def finite_or_none(o):
    """NaN/inf → null, so the JSON is strict (as the engine writes it)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite_or_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite_or_none(v) for v in o]
    return o


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True, help="folder written by turbovid-engine bench --random-weights")
    ap.add_argument("--resolution", default="480p")
    ap.add_argument("--aspect", default="16:9")
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--height", type=int, default=0)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--attention", default="dense", help="dense, sla or dense,sla")
    ap.add_argument("--sla-topk", type=float, default=0.1)
    ap.add_argument("--stages", default="text,dit,vae,mp4")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text-tokens", type=int, default=0, help="prompt length; default: the engine JSON's, else 64")
    ap.add_argument("--engine-json", default="", help="the engine's bench JSON (text_tokens, shapes)")
    ap.add_argument("--check", default="", help="folder with the engine's engine_dump.safetensors (bench --dump)")
    ap.add_argument("--sdpa", default="cudnn", choices=["cudnn", "flash", "efficient", "math", "default"],
                    help="SDPA backend for dense self-attention")
    ap.add_argument("--compile", action="store_true", help="torch.compile the DiT block")
    ap.add_argument("--cudnn-benchmark", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--json", default="")
    ap.add_argument("--label", default="torch", help="impl name in the report")
    return ap.parse_args()


def main():
    a = parse_args()
    device = torch.device(a.device)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    stages = set(a.stages.split(","))
    attentions = a.attention.split(",")
    engine = json.load(open(a.engine_json)) if a.engine_json and os.path.exists(a.engine_json) else {}
    if not a.width:
        a.width, a.height = RESOLUTIONS[(a.resolution, a.aspect)]
    ntext = a.text_tokens or engine.get("text_tokens") or 64
    md = a.model_dir
    dit_cfg = json.load(open(os.path.join(md, "config.json")))
    dit_cfg.setdefault("text_len", 512)
    dit_cfg.setdefault("freq_dim", 256)
    manifest = json.load(open(os.path.join(md, "turbovid.json"))) if os.path.exists(os.path.join(md, "turbovid.json")) else {}
    t5_cfg = dict(vocab=256384, dim=4096, dim_attn=4096, dim_ffn=10240, num_heads=64, num_layers=24,
                  num_buckets=32, max_distance=128)
    t5_cfg.update(manifest.get("t5", {}))
    vae_cfg = manifest.get("vae", {})
    T, H, W = (a.frames - 1) // 4 + 1, a.height // 8, a.width // 8
    latent_shape = (dit_cfg.get("out_dim", 16), T, H, W)
    b = Bench(a, device)
    dev_name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"

    t5 = dit = vae = None
    if "text" in stages:
        t5 = b.load("load_text", lambda: UmT5(load_weights(os.path.join(md, "models_t5_umt5-xxl-enc-bf16.safetensors"),
                                                          device, dtype), t5_cfg))
    if "dit" in stages:
        dit = b.load("load_dit", lambda: WanDit(load_weights(os.path.join(md, "diffusion_pytorch_model.safetensors"),
                                                             device, dtype, keep_f32=("norm",)), dit_cfg, dtype))
    if "vae" in stages:
        vae = b.load("load_vae", lambda: WanVaeDecoder(
            {k: v for k, v in load_weights(os.path.join(md, "Wan2.1_VAE.safetensors"), device, dtype).items()
             if k.startswith("decoder.") or k.startswith("conv2.")}, vae_cfg, dtype))
    if dit is not None:
        dit.sdpa, dit.topk = a.sdpa, a.sla_topk
        if a.compile:
            dit.block_fn = torch.compile(dit.block)
    in_use_after_load = torch.cuda.memory_allocated() if device.type == "cuda" else -1

    context = None
    if t5 is not None:
        ids = torch.tensor(text_ids(ntext, t5_cfg["vocab"]), device=device)
        row = b.row("text_encode", flop=t5_flops(t5_cfg, ntext), note=f"{ntext} tokens")
        try:
            context = b.time(row, lambda: t5.encode(ids)).float()
        except Exception as err:  # noqa: BLE001
            b.rows.remove(row)
            b.fail("text_encode", "", err)
    if context is None:
        context = torch.randn(ntext, dit_cfg["text_dim"], generator=torch.Generator().manual_seed(99)).to(device)
    latent = None
    if dit is not None:
        for att in attentions:
            fl = dit_flops(dit_cfg, T, H, W, a.sla_topk if att == "sla" else None)
            try:
                latent = run_dit(b, dit, context.to(dtype), att, latent_shape, fl)
            except Exception as err:  # noqa: BLE001
                b.fail("dit_forward", att, err)
    video = None
    if vae is not None:
        if latent is None:
            latent = torch.randn(latent_shape, generator=torch.Generator().manual_seed(7)).to(device)
        row = b.row("vae_decode", flop=vae_flops(vae_cfg, T, H, W))
        try:
            for _ in range(a.warmup):
                vae.decode(latent[:, :2])
            video = b.time(row, lambda: vae.decode(latent), warmup=0)
            if not torch.isfinite(video).all():
                raise RuntimeError("vae_decode: non-finite video")
        except Exception as err:  # noqa: BLE001
            b.rows.remove(row)
            b.fail("vae_decode", "", err)
    if "mp4" in stages:
        if video is None:
            video = (0.5 * torch.randn(3, a.frames, a.height, a.width)).to(device)
        row = b.row("frames", note="VAE output → uint8 RGB (GPU, then host)")
        b.time(row, lambda: ((video.clamp(-1, 1) + 1) / 2 * 255 + 0.5).floor().to(torch.uint8).permute(1, 2, 3, 0).cpu(),
               warmup=0)
        b.row("mp4_encode", note="skipped: no H.264 encoder in this PyTorch environment")

    checks = run_checks(b, a.check, t5, dit, vae, dtype) if a.check else {}
    add_pipeline_rows(b.rows)
    finish_rows(b.rows)
    peak = max([r["peak_bytes"] for r in b.rows] + [in_use_after_load, 0])
    tokens = T * (H // 2) * (W // 2)
    meta = {"impl": a.label, "model": engine.get("model", os.path.basename(os.path.normpath(md))), "model_dir": md,
            "backend": f"torch {torch.__version__}", "device": dev_name, "width": a.width, "height": a.height,
            "frames": a.frames, "latent": list(latent_shape), "tokens": tokens, "text_tokens": ntext,
            "steps": a.steps, "sla_topk": a.sla_topk, "repeat": a.repeat, "warmup": a.warmup,
            "notes": (f"dtype {a.dtype} ({'autocast' if dtype != torch.float32 else 'no autocast'} DiT), "
                      f"SDPA {a.sdpa} for dense self-attention, compile {a.compile}, own SLA (gather + SDPA)"),
            "flop_note": "2 FLOP per MAC; DiT = all GEMMs + 4*L*Lk*D per head; SLA = selected blocks + linear branch + proj_l + block scores",
            "peak_device_bytes": peak, "device_in_use_after_load_bytes": in_use_after_load,
            "peak_host_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "ok": not any(r["error"] for r in b.rows), "checks": checks, "rows": b.rows}
    print_table(meta, b.rows)
    print(f"peak device memory {peak / 2**30:.2f} GiB (allocated; in use after loading "
          f"{max(0, in_use_after_load) / 2**30:.2f} GiB); {'all stages ok' if meta['ok'] else 'SOME STAGES FAILED'}")
    for name, v in checks.items():
        print(f"check vs engine dump: {name:<18} rel. L2 {v:.3e}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(finite_or_none(meta), f, indent=1)
    return 0 if meta["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
