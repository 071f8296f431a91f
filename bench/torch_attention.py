#!/usr/bin/env python3
"""PyTorch reference for turbovid-kernel-bench: non-causal SDPA at the DiT attention shapes, bf16,
timed with CUDA events per backend (cuDNN, flash, efficient). Prints ms and TFLOP/s with the same
FLOP count as the kernel bench (4·Lq·Lk·D·heads). Run on the GPU machine: python3 bench/torch_attention.py"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [("self[12,32760]", 12, 32760, 32760, 128), ("self[40,75600]", 40, 75600, 75600, 128),
          ("cross[12,32760x512]", 12, 32760, 512, 128)]
BACKENDS = [("torch-cudnn", SDPBackend.CUDNN_ATTENTION), ("torch-flash", SDPBackend.FLASH_ATTENTION),
            ("torch-efficient", SDPBackend.EFFICIENT_ATTENTION)]


def time_ms(fn, iters):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name, heads, lq, lk, d in SHAPES:
        q = torch.randn(1, heads, lq, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        k = torch.randn(1, heads, lk, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        v = torch.randn(1, heads, lk, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        flop = 4.0 * lq * lk * d * heads
        for bname, backend in BACKENDS:
            try:
                with sdpa_kernel([backend]):
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), iters)
                print(f"{name:22s} {bname:16s} {ms:9.3f} ms {flop / ms / 1e9:8.1f} TFLOP/s")
            except RuntimeError as e:  # backend not available for this shape
                print(f"{name:22s} {bname:16s} unavailable ({str(e).splitlines()[0][:60]})")
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
