#!/usr/bin/env python3
"""report.py - turn bench/run's raw results into tables and JSON.

    report.py RUNS_TSV IDLE_TSV META_JSON [JSON_OUT]

RUNS_TSV rows:  workload round server requests seconds rps cpu_ticks
                clk_tck errors other_load_server_cpu_pct other_load_client_cpu_pct
IDLE_TSV rows:  server conns pss_before_kb pss_after_kb rss_before_kb
                rss_after_kb open_conns
META_JSON:      settings and machine description, copied into the JSON.

A "baseline" server (bench/run --baseline: another saker build, or the
same one with another option) gets its rows and saker/baseline ratios.
"""

import json
import sys

from tables import fmt, median, ratio, read_tsv

SERVERS = ("saker", "baseline", "nginx")
TITLES = {
    "plaintext": "plaintext: GET /plaintext, keep-alive",
    "pipeline": "pipeline: GET /plaintext, keep-alive, pipelined",
    "static": "static: GET /file4k.bin (4096-byte file), keep-alive",
}


def main():
    runs_tsv, idle_tsv, meta_json = sys.argv[1:4]
    json_out = sys.argv[4] if len(sys.argv) > 4 else None
    with open(meta_json) as f:
        meta = json.load(f)

    workloads = {}
    order = []
    noisy = 0
    rows = read_tsv(runs_tsv)
    servers = [s for s in SERVERS if any(r[2] == s for r in rows)]
    for w, rnd, srv, reqs, secs, rps, ticks, tck, errs, sother, cother in rows:
        if w not in workloads:
            workloads[w] = {s: [] for s in servers}
            order.append(w)
        reqs, ticks, tck = int(reqs), int(ticks), int(tck)
        cpu_s = ticks / tck
        workloads[w][srv].append({
            "round": int(rnd),
            "requests": reqs,
            "seconds": float(secs),
            "requests_per_sec": float(rps),
            "cpu_seconds": cpu_s,
            "cpu_us_per_request": cpu_s * 1e6 / reqs if reqs else None,
            "errors": errs,
            "other_load_server_cpu_pct": float(sother),
            "other_load_client_cpu_pct": float(cother),
        })
        if max(float(sother), float(cother)) > meta["settings"]["max_other"]:
            noisy += 1

    out = {"meta": meta, "workloads": {}, "idle": None}
    s = meta["settings"]
    lines = []
    lines.append("saker vs nginx - %s" % meta["machine"]["summary"])
    lines.append("servers: 1 worker pinned to CPU %s; wrk -t1 pinned to CPU %s; "
                 "%d round(s) x %ss (+%ss warm-up), order alternates per round"
                 % (s["server_cpu"], s["client_cpu"], s["rounds"],
                    s["duration"], s["warmup"]))
    lines.append("req/s: higher is better.  CPU us/req: server utime+stime "
                 "(master + worker) per request, lower is better.")
    lines.append("other load: % of the server CPU / client CPU used by anything "
                 "but the server / wrk during the run (should be ~0).")
    lines.append("")

    for w in order:
        d = workloads[w]
        res = {"title": TITLES.get(w, w)}
        conns = s["connections"]
        extra = ", %d-deep" % s["pipeline_depth"] if w == "pipeline" else ""
        lines.append("== %s (%d connections%s)" % (TITLES.get(w, w), conns, extra))
        lines.append("  %-14s %16s %20s" % ("", "req/s (median)", "CPU us/req (median)"))
        med = {}
        for srv in servers:
            runs = d[srv]
            rps = median([r["requests_per_sec"] for r in runs])
            cpu = median([r["cpu_us_per_request"] for r in runs
                          if r["cpu_us_per_request"] is not None])
            med[srv] = (rps, cpu)
            res[srv] = {"requests_per_sec_median": rps,
                        "cpu_us_per_request_median": cpu,
                        "runs": runs}
            lines.append("  %-14s %16s %20s" % (srv, fmt(rps, ",.0f"), fmt(cpu, ".2f")))
        r_rps = ratio(med["saker"][0], med["nginx"][0])
        r_cpu = ratio(med["saker"][1], med["nginx"][1])
        res["ratios"] = {
            "requests_per_sec_saker_over_nginx": r_rps,
            "cpu_per_request_saker_over_nginx": r_cpu,
        }
        lines.append("  %-14s %15sx %19sx" % ("saker/nginx", fmt(r_rps, ".3f"), fmt(r_cpu, ".3f")))
        if "baseline" in med:
            b_rps = ratio(med["saker"][0], med["baseline"][0])
            b_cpu = ratio(med["saker"][1], med["baseline"][1])
            res["ratios"]["requests_per_sec_saker_over_baseline"] = b_rps
            res["ratios"]["cpu_per_request_saker_over_baseline"] = b_cpu
            lines.append("  %-14s %15sx %19sx" % ("saker/baseline", fmt(b_rps, ".3f"),
                                                 fmt(b_cpu, ".3f")))
        verdict = []
        if r_rps is not None:
            verdict.append("req/s %s" % ("saker ahead" if r_rps > 1 else "saker behind"))
        if r_cpu is not None:
            verdict.append("CPU/req %s" % ("saker cheaper" if r_cpu < 1 else "saker costlier"))
        lines.append("  (req/s ratio >1 = saker faster; CPU ratio <1 = saker cheaper: %s)"
                     % "; ".join(verdict))
        lines.append("  raw runs:")
        for srv in servers:
            for r in sorted(d[srv], key=lambda r: r["round"]):
                lines.append("    round %d %-8s %10.0f req/s %10d req in %5.2fs  "
                             "cpu %6.2fs  %7s us/req  other load %4.1f%%/%4.1f%%%s"
                             % (r["round"], srv, r["requests_per_sec"], r["requests"],
                                r["seconds"], r["cpu_seconds"],
                                fmt(r["cpu_us_per_request"], ".2f"),
                                r["other_load_server_cpu_pct"],
                                r["other_load_client_cpu_pct"],
                                "" if r["errors"] in ("", "-") else "  ERRORS: " + r["errors"]))
        lines.append("")
        out["workloads"][w] = res

    if noisy:
        lines.append("WARNING: %d run(s) shared a CPU with other work (>%d%% other load on the "
                     "server or client CPU): figures are unreliable; rerun on a quiet machine."
                     % (noisy, meta["settings"]["max_other"]))
        lines.append("")
    out["noisy_runs"] = noisy

    idle_rows = read_tsv(idle_tsv)
    if idle_rows:
        idle = {}
        for srv, n, pb, pa, rb, ra, openc in idle_rows:
            n, pb, pa, rb, ra = int(n), int(pb), int(pa), int(rb), int(ra)
            idle[srv] = {
                "connections": n,
                "open_connections_seen": int(openc),
                "pss_before_kb": pb, "pss_after_kb": pa,
                "rss_before_kb": rb, "rss_after_kb": ra,
                "pss_bytes_per_connection": (pa - pb) * 1024.0 / n,
                "rss_bytes_per_connection": (ra - rb) * 1024.0 / n,
            }
        lines.append("== idle: memory per idle keep-alive connection "
                     "(%s connections, one request each)" % s["idle_connections"])
        lines.append("  %-12s %12s %12s %14s %14s %8s"
                     % ("", "Pss before", "Pss after", "Pss B/conn", "Rss B/conn", "open"))
        for srv in SERVERS:
            if srv in idle:
                i = idle[srv]
                lines.append("  %-12s %9d kB %9d kB %14.0f %14.0f %8d"
                             % (srv, i["pss_before_kb"], i["pss_after_kb"],
                                i["pss_bytes_per_connection"],
                                i["rss_bytes_per_connection"],
                                i["open_connections_seen"]))
        if "saker" in idle and "nginx" in idle:
            r_rss = ratio(idle["saker"]["rss_bytes_per_connection"],
                          idle["nginx"]["rss_bytes_per_connection"])
            r_pss = ratio(idle["saker"]["pss_bytes_per_connection"],
                          idle["nginx"]["pss_bytes_per_connection"])
            idle["ratio_rss_per_connection_saker_over_nginx"] = r_rss
            idle["ratio_pss_per_connection_saker_over_nginx"] = r_pss
            lines.append("  %-12s %25s %14sx %13sx   (<1 = saker uses less)"
                         % ("saker/nginx", "", fmt(r_pss, ".3f"), fmt(r_rss, ".3f")))
        lines.append("  (growth of the summed Pss/Rss of the server's processes "
                     "(/proc/PID/smaps_rollup) / connections: user memory only, no "
                     "kernel socket memory.")
        lines.append("   Rss is the steadier figure: Pss also moves when pages shared "
                     "by master and worker are copied on write. nginx's")
        lines.append("   per-slot connection and event structures are allocated at "
                     "start for worker_connections, so are not in its growth.)")
        lines.append("")
        out["idle"] = idle

    sys.stdout.write("\n".join(lines) + "\n")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
