#!/usr/bin/env python3
"""torch_anchor.py: the PyTorch anchors of tdsl_bench (eager and torch.compile).

Two ways to run it:

  --serve --threads T
      what tdsl_bench does: one JSON line out at start ({"ok": true, "torch": VERSION}),
      then one request line in, one JSON line out, until "quit" or end of input:
        setup CASE K=V ...  builds the inputs, warms eager up, runs torch.compile and warms
                            it up; replies {"ok", "variants": "eager,compile", "skipped",
                            "why", "compile_s"}
        run VARIANT         one call, timed here with time.perf_counter; replies {"ok", "ms"}
      The harness alternates these calls with its own (tdsl, oneDNN, OpenBLAS), so every
      implementation of a case is measured in the same stretch of time.

  --case CASE --shape "K=V ..." --threads T [--reps N]
      standalone: alternates the variants of one case N times (after a warm-up) and prints
      {"case", "shape", "threads", "variants": {NAME: {"median_ms", "times_ms"}}, "skipped"}.

Cases (the shapes' letters as in bench/suite_*.c): sgemm (M N K), gemm_bias_gelu (M N K),
softmax (R N), layernorm (R D), rmsnorm (R D), attention_causal (B H N D), mlp_gelu
(M D F E), gla (H T K V), retention (H T K V), mamba (L E N). The scans are eager reference
loops over time; torch.compile is not run on a 2048-step Python loop, nor on a lone matmul
(it calls the same kernel as eager): those cases offer "eager" only.
"""
import argparse
import json
import statistics
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def uniform(torch, shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape) * (hi - lo) + lo


# ---- cases: each returns (function, args, why-not-compile or None) -----------------------------

def case_sgemm(torch, p):
    a = uniform(torch, (p["M"], p["K"]))
    b = uniform(torch, (p["K"], p["N"]))
    return (lambda a, b: torch.mm(a, b)), (a, b), "torch.compile of a lone matmul calls the same kernel as eager"


def case_gemm_bias_gelu(torch, p):
    F = torch.nn.functional
    a = uniform(torch, (p["M"], p["K"]))
    b = uniform(torch, (p["K"], p["N"]))
    bias = uniform(torch, (p["N"],))
    return (lambda a, b, bias: F.gelu(torch.addmm(bias, a, b))), (a, b, bias), None


def case_softmax(torch, p):
    x = uniform(torch, (p["R"], p["N"]), -4, 4)
    return (lambda x: torch.softmax(x, dim=-1)), (x,), None


def case_layernorm(torch, p):
    F = torch.nn.functional
    d = p["D"]
    x, g, b = uniform(torch, (p["R"], d)), uniform(torch, (d,)), uniform(torch, (d,))
    return (lambda x, g, b: F.layer_norm(x, (d,), g, b, 1e-5)), (x, g, b), None


def case_rmsnorm(torch, p):
    F = torch.nn.functional
    d = p["D"]
    x, g = uniform(torch, (p["R"], d)), uniform(torch, (d,))
    if hasattr(F, "rms_norm"):
        return (lambda x, g: F.rms_norm(x, (d,), g, 1e-5)), (x, g), None
    return (lambda x, g: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g), (x, g), None


def case_attention_causal(torch, p):
    F = torch.nn.functional
    shape = (p["B"], p["H"], p["N"], p["D"])
    q, k, v = uniform(torch, shape), uniform(torch, shape), uniform(torch, shape)
    return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)), (q, k, v), None


def case_mlp_gelu(torch, p):
    F = torch.nn.functional
    m, d, f, e = p["M"], p["D"], p["F"], p["E"]
    s1, s2 = d ** -0.5, f ** -0.5
    x = uniform(torch, (m, d))
    w1, b1 = uniform(torch, (f, d), -s1, s1), uniform(torch, (f,), -s1, s1)
    w2, b2 = uniform(torch, (e, f), -s2, s2), uniform(torch, (e,), -s2, s2)
    return (lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)), (x, w1, b1, w2, b2), None


NO_LOOP_COMPILE = "torch.compile is not run on a 2048-step Python loop"


def linear_attention_loop(torch, q, k, v, decay, per_key):
    """S_t = diag(decay_t) S_{t-1} + k_t^T v_t, o_t = q_t S_t, per head (GLA; retention when
    decay is one gamma per head)."""
    h, t, kd = q.shape
    s = q.new_zeros(h, kd, v.shape[-1])
    o = q.new_empty(h, t, v.shape[-1])
    g = None if per_key else decay[:, None, None]
    for i in range(t):
        a = decay[:, i, :, None] if per_key else g
        s = torch.addcmul(a * s, k[:, i, :, None], v[:, i, None, :])
        o[:, i] = torch.bmm(q[:, i, None, :], s).squeeze(1)
    return o, s


def case_gla(torch, p):
    h, t, kd, vd = p["H"], p["T"], p["K"], p["V"]
    s = kd ** -0.5
    q, k = uniform(torch, (h, t, kd), -s, s), uniform(torch, (h, t, kd), -s, s)
    v, alpha = uniform(torch, (h, t, vd)), uniform(torch, (h, t, kd), 0.9, 1.0)
    return (lambda q, k, v, a: linear_attention_loop(torch, q, k, v, a, True)), (q, k, v, alpha), NO_LOOP_COMPILE


def case_retention(torch, p):
    h, t, kd, vd = p["H"], p["T"], p["K"], p["V"]
    s = kd ** -0.5
    q, k = uniform(torch, (h, t, kd), -s, s), uniform(torch, (h, t, kd), -s, s)
    v, gamma = uniform(torch, (h, t, vd)), uniform(torch, (h,), 0.9, 0.999)
    return (lambda q, k, v, g: linear_attention_loop(torch, q, k, v, g, False)), (q, k, v, gamma), NO_LOOP_COMPILE


def mamba_loop(torch, u, delta, A, B, C, D, delta_bias):
    """Mamba's selective scan, one sequence: h_t = exp(dt_t A) * h_{t-1} + (dt_t u_t) B_t,
    y_t = h_t C_t + D u_t, dt = softplus(delta + delta_bias)."""
    dt = torch.nn.functional.softplus(delta + delta_bias)
    L, E = u.shape
    h = u.new_zeros(E, A.shape[1])
    y = u.new_empty(L, E)
    for t in range(L):
        h = torch.exp(dt[t, :, None] * A) * h + (dt[t] * u[t])[:, None] * B[t][None, :]
        y[t] = h @ C[t] + D * u[t]
    return y, h


def case_mamba(torch, p):
    L, E, N = p["L"], p["E"], p["N"]
    args = (uniform(torch, (L, E)), uniform(torch, (L, E)), uniform(torch, (E, N), -4.0, -0.5),
            uniform(torch, (L, N)), uniform(torch, (L, N)), uniform(torch, (E,)), uniform(torch, (E,)))
    return (lambda *a: mamba_loop(torch, *a)), args, NO_LOOP_COMPILE


CASES = {
    "sgemm": case_sgemm,
    "gemm_bias_gelu": case_gemm_bias_gelu,
    "softmax": case_softmax,
    "layernorm": case_layernorm,
    "rmsnorm": case_rmsnorm,
    "attention_causal": case_attention_causal,
    "mlp_gelu": case_mlp_gelu,
    "gla": case_gla,
    "retention": case_retention,
    "mamba": case_mamba,
}


# ---- setting a case up and timing it -------------------------------------------------------------

class Setup:
    """One case's callables: variant name -> zero-argument function."""

    def __init__(self, torch, name, shape):
        if name not in CASES:
            raise ValueError("unknown case %r" % name)
        fn, args, no_compile = CASES[name](torch, shape)
        self.fns = {"eager": lambda: fn(*args)}
        self.skipped, self.why, self.compile_s = "", "", 0.0
        self.fns["eager"]()
        self.fns["eager"]()
        if no_compile:  # not applicable rather than unavailable: not reported as skipped
            return
        try:
            compiled = torch.compile(fn)
            t0 = time.perf_counter()
            compiled(*args)
            self.compile_s = time.perf_counter() - t0
            compiled(*args)
            self.fns["compile"] = lambda: compiled(*args)
        except Exception as e:  # torch.compile needs a C++ compiler and more; say why not
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            self.skipped, self.why = "compile", "torch.compile failed: " + first[:200]

    def run(self, variant):
        fn = self.fns[variant]
        t0 = time.perf_counter()
        fn()
        return 1e3 * (time.perf_counter() - t0)


def parse_shape(tokens):
    shape = {}
    for tok in tokens:
        key, _, val = tok.partition("=")
        shape[key] = int(val)
    return shape


def import_torch(threads):
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    return torch


def serve(threads):
    try:
        torch = import_torch(threads)
    except Exception as e:
        reply({"ok": False, "why": "cannot import torch (%s: %s)" % (type(e).__name__, e)})
        return 1
    reply({"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads()})
    setup = None
    with torch.inference_mode():
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                if words[0] == "quit":
                    break
                if words[0] == "setup":
                    setup = None
                    setup = Setup(torch, words[1], parse_shape(words[2:]))
                    reply({"ok": True, "variants": ",".join(setup.fns), "skipped": setup.skipped,
                           "why": setup.why, "compile_s": setup.compile_s})
                elif words[0] == "run":
                    if setup is None or words[1] not in setup.fns:
                        reply({"ok": False, "why": "no variant %s set up" % words[1]})
                    else:
                        reply({"ok": True, "ms": setup.run(words[1])})
                else:
                    reply({"ok": False, "why": "unknown request %r" % words[0]})
            except Exception as e:
                print("torch_anchor: %s: %s" % (line.strip(), e), file=sys.stderr)
                reply({"ok": False, "why": "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")})
    return 0


def standalone(args):
    torch = import_torch(args.threads)
    with torch.inference_mode():
        setup = Setup(torch, args.case, parse_shape(args.shape.split()))
        names = list(setup.fns)
        times = {n: [] for n in names}
        for r in range(args.reps):
            for j in range(len(names)):
                n = names[(j + r) % len(names)]
                times[n].append(setup.run(n))
    out = {"case": args.case, "shape": args.shape, "threads": args.threads, "torch": torch.__version__,
           "variants": {n: {"median_ms": statistics.median(t), "times_ms": t} for n, t in times.items()},
           "skipped": setup.skipped, "why": setup.why, "compile_s": setup.compile_s}
    print(json.dumps(out, indent=1))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", action="store_true", help="answer tdsl_bench's requests on stdin")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--shape", default="")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if args.serve:
        return serve(args.threads)
    if not args.case:
        ap.error("--case is required without --serve")
    return standalone(args)


if __name__ == "__main__":
    sys.exit(main())
