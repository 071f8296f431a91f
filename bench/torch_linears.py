#!/usr/bin/env python3
"""PyTorch's same-run references for the quantised linears (issue: the RTX 5090 path): at the Wan
DiT linear shapes, the bf16 linear (cuBLASLt through F.linear), the int8 matrix product
torch._int_mm (s8·s8 → s32, no scales: the floor of any W8A8 linear) plus the per-row/per-column
dequantisation PyTorch needs after it, and the FP8 e4m3 product torch._scaled_mm with per-token
and per-channel scales (bf16 out). Each timed with CUDA events after warm-up; ms, TFLOP/s (2·M·N·K)
and the speed-up over bf16. Run on the GPU machine: python3 bench/torch_linears.py [iters] [--json F]
"""
import json
import sys

import torch

from torch_attention import time_ms  # the same CUDA-event timing (bench/ is sys.path[0])

# (label, M tokens, N out, K in): the 14B model at 720p (75,600 tokens) and 480p (32,760), the
# 1.3B at 480p; q/k/v/o (dim × dim), ffn.0 (ffn × dim), ffn.2 (dim × ffn).
SHAPES = []
for model, dim, ffn, tokens in (("14b", 5120, 13824, (75600, 32760)), ("1.3b", 1536, 8960, (32760,))):
    for m in tokens:
        SHAPES += [(f"{model} qkvo M={m}", m, dim, dim), (f"{model} ffn.0 M={m}", m, ffn, dim),
                   (f"{model} ffn.2 M={m}", m, dim, ffn)]


def main():
    iters = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10
    json_path = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    print(f"{'shape':24s} {'bf16 ms':>9} {'int8 mm':>9} {'int8+dq':>9} {'fp8 ms':>9} "
          f"{'int8 x':>7} {'fp8 x':>7}   TFLOP/s bf16/int8+dq/fp8")
    for label, m, n, k in SHAPES:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=gen)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=gen) / k ** 0.5
        b = torch.randn(n, device="cuda", dtype=torch.bfloat16, generator=gen)
        flop = 2.0 * m * n * k
        bf16 = time_ms(lambda: torch.nn.functional.linear(x, w, b), iters)
        xq = torch.randint(-127, 128, (m, k), device="cuda", dtype=torch.int8, generator=gen)
        wq = torch.randint(-127, 128, (n, k), device="cuda", dtype=torch.int8, generator=gen)
        xs = torch.rand(m, 1, device="cuda", generator=gen) * 1e-2
        ws = torch.rand(1, n, device="cuda", generator=gen) * 1e-2
        wq_t = wq.t()
        int8 = time_ms(lambda: torch._int_mm(xq, wq_t), iters)
        int8_dq = time_ms(lambda: (torch._int_mm(xq, wq_t).float() * xs * ws + b).to(torch.bfloat16), iters)
        x8 = x.to(torch.float8_e4m3fn)
        w8_t = w.to(torch.float8_e4m3fn).t()
        try:
            fp8 = time_ms(lambda: torch._scaled_mm(x8, w8_t, scale_a=xs, scale_b=ws, bias=b,
                                                   out_dtype=torch.bfloat16), iters)
        except RuntimeError as e:  # rowwise scaling not in this build
            print(f"  fp8 rowwise unavailable: {str(e).splitlines()[0][:80]}")
            fp8 = None
        tf = lambda ms: flop / ms / 1e9 if ms else float("nan")
        print(f"{label:24s} {bf16:9.3f} {int8:9.3f} {int8_dq:9.3f} {fp8 or float('nan'):9.3f} "
              f"{bf16 / int8_dq:6.2f}x {bf16 / fp8 if fp8 else float('nan'):6.2f}x   "
              f"{tf(bf16):.0f}/{tf(int8_dq):.0f}/{tf(fp8):.0f}")
        rows.append(dict(shape=label, m=m, n=n, k=k, bf16_ms=bf16, int_mm_ms=int8,
                         int8_dequant_ms=int8_dq, fp8_scaled_mm_ms=fp8))
        del x, w, xq, wq, x8, w8_t
        torch.cuda.empty_cache()
    if json_path:
        with open(json_path, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f,
                      indent=1)


if __name__ == "__main__":
    main()
