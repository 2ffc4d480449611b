#!/usr/bin/env python3
"""chart.py - draw bench/run's results, the servers side by side.

    chart.py RESULTS_JSON OUT_PNG

One group of bars per workload, one bar per server (saker, nginx, h2o):
throughput (req/s; MB/s for the large files) and server CPU per request
(per MB for the large files), each relative to nginx's figure in the same
run (nginx = 1), with the absolute figure over each bar; then memory at
rest and per idle connection when the run measured them. Needs matplotlib
(Debian: python3-matplotlib).
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

COLORS = {"saker": "#2b7bba", "nginx": "#3a9e3a", "h2o": "#d9822b"}
BIG = ("static1m", "static100m")


def figure_of(res, w, kind):
    big = w in BIG
    if kind == "rate":
        key = "megabytes_per_sec_median" if big else "requests_per_sec_median"
        unit = "MB/s" if big else "req/s"
    else:
        key = "cpu_us_per_megabyte_median" if big else "cpu_us_per_request_median"
        unit = "us/MB" if big else "us/req"
    return res.get(key), unit


def bar_panel(ax, data, servers, kind, title):
    workloads = list(data["workloads"])
    base = "nginx" if "nginx" in servers else servers[-1]
    width = 0.8 / len(servers)
    for k, srv in enumerate(servers):
        xs, heights, labels = [], [], []
        for i, w in enumerate(workloads):
            res = data["workloads"][w]
            if srv not in res or base not in res:
                continue
            value, unit = figure_of(res[srv], w, kind)
            ref, _ = figure_of(res[base], w, kind)
            if value is None or not ref:
                continue
            xs.append(i + (k - (len(servers) - 1) / 2) * width)
            heights.append(value / ref)
            labels.append(("%.0f" if value >= 100 else "%.2f") % value)
        bars = ax.bar(xs, heights, width, label=srv, color=COLORS.get(srv))
        for bar, label in zip(bars, labels):
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=6, rotation=90,
                        xytext=(0, 2), textcoords="offset points")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads)
    ax.set_ylabel("relative to %s (= 1)" % base)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def memory_panel(ax, idle, servers):
    groups = [("Rss at rest, MB", lambda i: i["rss_before_kb"] / 1024.0),
              ("Pss at rest, MB", lambda i: i["pss_before_kb"] / 1024.0),
              ("Rss per idle conn, kB", lambda i: i["rss_bytes_per_connection"] / 1000.0)]
    width = 0.8 / len(servers)
    for k, srv in enumerate(servers):
        if srv not in idle:
            continue
        xs = [g + (k - (len(servers) - 1) / 2) * width for g in range(len(groups))]
        heights = [f(idle[srv]) for _, f in groups]
        bars = ax.bar(xs, heights, width, label=srv, color=COLORS.get(srv))
        for bar, h in zip(bars, heights):
            ax.annotate("%.1f" % h, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=6, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g for g, _ in groups])
    ax.set_title("memory (lower is better)", fontsize=10)
    ax.legend(fontsize=8)


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    servers = data["meta"]["servers"]
    panels = (1 if data["workloads"] else 0) * 2 + (1 if data.get("idle") else 0)
    if panels == 0:
        sys.exit("chart.py: nothing to draw in %s" % sys.argv[1])
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.6 * panels), squeeze=False)
    axes = [a[0] for a in axes]
    if data["workloads"]:
        bar_panel(axes[0], data, servers, "rate",
                  "throughput, req/s (MB/s for the large files): higher is better")
        bar_panel(axes[1], data, servers, "cpu",
                  "server CPU per request (per MB for the large files): lower is better")
    if data.get("idle"):
        memory_panel(axes[-1], data["idle"], servers)
    m = data["meta"]
    fig.suptitle("%s, one worker each (%s; saker %s)"
                 % (" / ".join(servers), m["machine"]["summary"],
                    m["versions"].get("saker_git", "?")), fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
