#!/usr/bin/env python3
"""plot.py: the PNG chart of a tdsl_bench results file.

    python bench/plot.py bench/results/core.json bench/results/core.png

Top: for every case, the ratio anchor time / tdsl time of each anchor at each thread count
(log scale; above the line at 1, tdsl is faster). Bottom: the share of the measured roofline
that tdsl and the best anchor reach (peak FMA FLOP/s, or triad GB/s for the row kernels).
Needs matplotlib; tdsl_bench runs it with the first python that has it.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    rows = [r for r in data.get("results", []) if r.get("available")]
    cases = []
    for r in rows:
        key = (r["case"], r["shape"])
        if key not in cases:
            cases.append(key)
    threads = sorted({r["threads"] for r in rows})
    anchors = []
    for r in rows:
        if r["kind"] != "tdsl" and r["impl"] not in anchors:
            anchors.append(r["impl"])
    if not cases:
        print("plot.py: no results to plot", file=sys.stderr)
        return 1

    def find(case, impl, t):
        for r in rows:
            if (r["case"], r["shape"]) == case and r["impl"] == impl and r["threads"] == t:
                return r
        return None

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(10, 1.9 * len(cases) + 3), 10), constrained_layout=True)
    colors = plt.get_cmap("tab10").colors
    nbars = max(1, len(anchors) * len(threads))
    width = 0.8 / nbars
    reduced = {(r["case"], r["shape"]) for r in rows if r.get("note", "").startswith("target")}
    labels = ["%s\n%s%s" % (c, s.replace(" ", "\n", 1) if len(s) > 14 else s,
                            "\n(smaller than target)" if (c, s) in reduced else "") for c, s in cases]

    lo, hi = 1.0, 1.0
    for ai, anchor in enumerate(anchors):
        for ti, t in enumerate(threads):
            xs, ys = [], []
            for ci, case in enumerate(cases):
                r = find(case, anchor, t)
                if r and r.get("ratio"):
                    xs.append(ci - 0.4 + width * (ai * len(threads) + ti + 0.5))
                    ys.append(r["ratio"])
            if not xs:
                continue
            lo, hi = min(lo, min(ys)), max(hi, max(ys))
            ax1.bar(xs, ys, width, color=colors[ai % 10], alpha=1.0 if ti == 0 else 0.55,
                    hatch=None if ti == 0 else "//", edgecolor="black", linewidth=0.4,
                    label="%s, %d thread%s" % (anchor, t, "s" if t > 1 else ""))
            for x, y in zip(xs, ys):
                ax1.annotate("%.2g" % y, (x, y), ha="center", va="bottom", fontsize=6, rotation=90,
                             xytext=(0, 2), textcoords="offset points")
    ax1.set_yscale("log")
    ax1.set_ylim(lo / 3, hi * 6)
    ax1.axhline(1.0, color="black", linewidth=1)
    ax1.set_xticks(range(len(cases)))
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_ylabel("anchor time / tdsl time (log)\n> 1: tdsl faster")
    title = "tdsl_bench %s suite, %s, %s" % (data.get("suite", "?"), data.get("date", ""), data.get("commit", ""))
    ax1.set_title(title)
    ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    ax1.grid(axis="y", which="both", alpha=0.3)

    series = [("tdsl", t) for t in threads] + [("best anchor", t) for t in threads]
    width2 = 0.8 / len(series)
    for si, (what, t) in enumerate(series):
        xs, ys = [], []
        for ci, case in enumerate(cases):
            cand = [r for r in rows if (r["case"], r["shape"]) == case and r["threads"] == t
                    and r.get("roofline_pct") and ((r["kind"] == "tdsl") == (what == "tdsl"))
                    and r["kind"] != "tdsl-nofuse"]
            if cand:
                best = max(cand, key=lambda r: r["roofline_pct"])
                xs.append(ci - 0.4 + width2 * (si + 0.5))
                ys.append(best["roofline_pct"])
        if not xs:
            continue
        ax2.bar(xs, ys, width2, color="tab:red" if what == "tdsl" else "tab:gray",
                alpha=1.0 if t == threads[0] else 0.55, hatch=None if t == threads[0] else "//",
                edgecolor="black", linewidth=0.4, label="%s, %d thread%s" % (what, t, "s" if t > 1 else ""))
        for x, y in zip(xs, ys):
            ax2.annotate("%.2g" % y, (x, y), ha="center", va="bottom", fontsize=6, rotation=90,
                         xytext=(0, 2), textcoords="offset points")
    ax2.set_yscale("log")
    ax2.set_ylim(top=400)
    ax2.set_xticks(range(len(cases)))
    ax2.set_xticklabels(labels, fontsize=8)
    ax2.set_ylabel("% of measured roofline (log)\nFMA peak, or triad GB/s for row kernels")
    machine = data.get("machine", [])
    ax2.set_title("roofline: " + "; ".join("%d thr: %.0f GFLOP/s, %.1f GB/s" % (m["threads"], m["peak_gflops"],
                                                                                 m["triad_gbs"]) for m in machine),
                  fontsize=9)
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    ax2.grid(axis="y", which="both", alpha=0.3)
    fig.savefig(dst, dpi=110)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: plot.py RESULTS.json OUT.png", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
