#!/usr/bin/env python3
"""report.py - turn bench/run's raw results into tables and JSON.

    report.py RUNS_TSV IDLE_TSV DIST_TSV META_JSON DIST_STEERING JSON_OUT

RUNS_TSV rows:  workload round server requests seconds rps cpu_ticks
                clk_tck errors other_load_server_cpu_pct
                other_load_client_cpu_pct bytes_read
IDLE_TSV rows:  server conns pss_before_kb pss_after_kb rss_before_kb
                rss_after_kb open_conns (before = at rest, after a warm-up)
DIST_TSV rows:  connections round worker connections_accepted requests
META_JSON:      settings, servers and machine description, copied into the JSON.
DIST_STEERING:  how the two-worker saker steers ("2 sockets, round-robin").
"""

import json
import sys

from tables import fmt, median, ratio, read_tsv

TITLES = {
    "plaintext": "plaintext: GET /plaintext, keep-alive",
    "pipeline": "pipeline: GET /plaintext, keep-alive, pipelined",
    "static": "static: GET /file4k.bin (4096-byte file), keep-alive",
    "static1m": "static1m: GET /file1m.bin (1 MiB file), keep-alive",
    "static100m": "static100m: GET /file100m.bin (100 MiB file), keep-alive",
}
BIG = ("static1m", "static100m")  # throughput in MB/s, CPU per MB too


def load_runs(path, max_other):
    workloads, order, noisy = {}, [], 0
    for (w, rnd, srv, reqs, secs, rps, ticks, tck, errs, sother, cother,
         nbytes, client_ticks) in read_tsv(path):
        if w not in workloads:
            workloads[w] = {}
            order.append(w)
        reqs, ticks, tck, nbytes = int(reqs), int(ticks), int(tck), int(nbytes)
        cpu_s = ticks / tck
        secs = float(secs)
        workloads[w].setdefault(srv, []).append({
            "round": int(rnd),
            "requests": reqs,
            "seconds": secs,
            "requests_per_sec": float(rps),
            "megabytes_per_sec": nbytes / 1e6 / secs if secs else None,
            "cpu_seconds": cpu_s,
            "cpu_us_per_request": cpu_s * 1e6 / reqs if reqs else None,
            "cpu_us_per_megabyte": cpu_s * 1e6 / (nbytes / 1e6) if nbytes else None,
            # wrk's own CPU: how hard the server's way of sending makes the
            # receiver work (large files)
            "client_cpu_us_per_megabyte":
                int(client_ticks) / tck * 1e6 / (nbytes / 1e6) if nbytes else None,
            "errors": errs,
            "other_load_server_cpu_pct": float(sother),
            "other_load_client_cpu_pct": float(cother),
        })
        if max(float(sother), float(cother)) > max_other:
            noisy += 1
    return workloads, order, noisy


def summarize(runs):
    def med(key):
        return median([r[key] for r in runs if r[key] is not None])
    return {"requests_per_sec_median": med("requests_per_sec"),
            "megabytes_per_sec_median": med("megabytes_per_sec"),
            "cpu_us_per_request_median": med("cpu_us_per_request"),
            "cpu_us_per_megabyte_median": med("cpu_us_per_megabyte"),
            "client_cpu_us_per_megabyte_median": med("client_cpu_us_per_megabyte"),
            "runs": runs}


def workload_table(w, d, servers, s, lines):
    big = w in BIG
    conns = s["big_connections"] if big else s["connections"]
    extra = ", %d-deep" % s["pipeline_depth"] if w == "pipeline" else ""
    lines.append("== %s (%d connections%s)" % (TITLES.get(w, w), conns, extra))
    rate, rate_key = ("MB/s", "megabytes_per_sec_median") if big else \
        ("req/s", "requests_per_sec_median")
    cpu, cpu_key = ("CPU us/MB", "cpu_us_per_megabyte_median") if big else \
        ("CPU us/req", "cpu_us_per_request_median")
    client = "  wrk CPU us/MB (median)" if big else ""
    lines.append("  %-14s %16s %20s%s" % ("", rate + " (median)", cpu + " (median)", client))
    res = {"title": TITLES.get(w, w)}
    for srv in servers:
        if srv in d:
            res[srv] = summarize(d[srv])
            client = " %23s" % fmt(res[srv]["client_cpu_us_per_megabyte_median"], ".2f") \
                if big else ""
            lines.append("  %-14s %16s %20s%s" % (srv, fmt(res[srv][rate_key], ",.0f"),
                                                  fmt(res[srv][cpu_key], ".2f"), client))
    res["ratios"] = {}
    for other in servers[1:]:
        if "saker" not in res or other not in res:
            continue
        r_rate = ratio(res["saker"][rate_key], res[other][rate_key])
        r_cpu = ratio(res["saker"][cpu_key], res[other][cpu_key])
        res["ratios"][other] = {"rate_saker_over_other": r_rate,
                                "cpu_saker_over_other": r_cpu}
        lines.append("  %-14s %15sx %19sx" % ("saker/" + other, fmt(r_rate, ".3f"),
                                               fmt(r_cpu, ".3f")))
    lines.append("  (rate ratio >1 = saker faster; CPU ratio <1 = saker cheaper)")
    lines.append("  raw runs:")
    for srv in servers:
        for r in sorted(d.get(srv, []), key=lambda r: r["round"]):
            lines.append("    round %d %-6s %10.0f req/s %8s MB/s %9d req in %5.2fs  "
                         "cpu %6.2fs  %7s us/req  other load %4.1f%%/%4.1f%%%s"
                         % (r["round"], srv, r["requests_per_sec"],
                            fmt(r["megabytes_per_sec"], ".0f"), r["requests"],
                            r["seconds"], r["cpu_seconds"],
                            fmt(r["cpu_us_per_request"], ".2f"),
                            r["other_load_server_cpu_pct"], r["other_load_client_cpu_pct"],
                            "" if r["errors"] in ("", "-") else "  ERRORS: " + r["errors"]))
    lines.append("")
    return res


def idle_table(rows, servers, s, lines):
    idle = {}
    for srv, n, pb, pa, rb, ra, openc in rows:
        n, pb, pa, rb, ra = int(n), int(pb), int(pa), int(rb), int(ra)
        idle[srv] = {
            "connections": n,
            "open_connections_seen": int(openc),
            "pss_before_kb": pb, "pss_after_kb": pa,
            "rss_before_kb": rb, "rss_after_kb": ra,
            "pss_bytes_per_connection": (pa - pb) * 1024.0 / n,
            "rss_bytes_per_connection": (ra - rb) * 1024.0 / n,
        }
    lines.append("== memory at rest (after a 1 s warm-up), and per idle keep-alive "
                 "connection (%s connections, one request each)" % s["idle_connections"])
    lines.append("  %-12s %14s %14s %14s %14s %8s"
                 % ("", "Rss at rest", "Pss at rest", "Rss B/conn", "Pss B/conn", "open"))
    for srv in servers:
        if srv in idle:
            i = idle[srv]
            lines.append("  %-12s %11d kB %11d kB %14.0f %14.0f %8d"
                         % (srv, i["rss_before_kb"], i["pss_before_kb"],
                            i["rss_bytes_per_connection"], i["pss_bytes_per_connection"],
                            i["open_connections_seen"]))
    for other in servers[1:]:
        if "saker" in idle and other in idle:
            r = {k: ratio(idle["saker"][k], idle[other][k])
                 for k in ("rss_before_kb", "pss_before_kb", "rss_bytes_per_connection",
                           "pss_bytes_per_connection")}
            idle["ratios_saker_over_" + other] = r
            lines.append("  %-12s %13sx %13sx %13sx %13sx"
                         % ("saker/" + other, fmt(r["rss_before_kb"], ".3f"),
                            fmt(r["pss_before_kb"], ".3f"),
                            fmt(r["rss_bytes_per_connection"], ".3f"),
                            fmt(r["pss_bytes_per_connection"], ".3f")))
    lines.append("  (summed over the server's processes, /proc/PID/smaps_rollup; user "
                 "memory only, no kernel socket memory. <1 = saker uses less.")
    lines.append("   Rss counts each shared library page in every process that maps it; "
                 "Pss divides it among them.")
    lines.append("   nginx allocates its connection structures for worker_connections at "
                 "start: they are in its memory at rest, not in its growth.)")
    lines.append("")
    return idle


def dist_table(rows, steering, lines):
    by_conns = {}
    for conns, rnd, worker, accepted, requests in rows:
        by_conns.setdefault(int(conns), {}).setdefault(int(rnd), []).append(
            {"worker": int(worker), "connections": int(accepted), "requests": int(requests)})
    lines.append("== dist: saker with 2 workers (%s), wrk -t2 unpinned; each worker's "
                 "share of connections and requests" % (steering or "steering unknown"))
    out = {"steering": steering, "runs": []}
    worst = {}
    for conns in sorted(by_conns):
        for rnd in sorted(by_conns[conns]):
            ws = sorted(by_conns[conns][rnd], key=lambda w: w["worker"])
            tc = sum(w["connections"] for w in ws) or 1
            tr = sum(w["requests"] for w in ws) or 1
            for w in ws:
                w["connection_share"] = w["connections"] / tc
                w["request_share"] = w["requests"] / tr
            even = 1.0 / len(ws)
            dev = max(max(abs(w["connection_share"] - even), abs(w["request_share"] - even))
                      / even for w in ws)
            worst[conns] = max(worst.get(conns, 0.0), dev)
            out["runs"].append({"connections": conns, "round": rnd, "workers": ws,
                                "largest_deviation_from_even": dev})
            lines.append("  c%-5d round %d: %s  (largest deviation from an even share %.1f%%)"
                         % (conns, rnd, "; ".join(
                             "worker %d: %d conns (%.1f%%), %d req (%.1f%%)"
                             % (w["worker"], w["connections"], 100 * w["connection_share"],
                                w["requests"], 100 * w["request_share"]) for w in ws),
                            100 * dev))
    out["worst_deviation_by_connections"] = worst
    lines.append("")
    return out


def main():
    runs_tsv, idle_tsv, dist_tsv, meta_json, steering, json_out = sys.argv[1:7]
    with open(meta_json) as f:
        meta = json.load(f)
    servers = meta["servers"]
    s = meta["settings"]
    workloads, order, noisy = load_runs(runs_tsv, s["max_other"])

    lines = ["%s - %s" % (" vs ".join(servers), meta["machine"]["summary"]),
             "servers: 1 worker (h2o: 1 thread) pinned to CPU %s; wrk -t1 pinned to CPU %s; "
             "%d round(s) x %ss (+%ss warm-up), the servers' order rotates per round"
             % (s["server_cpu"], s["client_cpu"], s["rounds"], s["duration"], s["warmup"]),
             "req/s, MB/s: higher is better.  CPU us/req, us/MB: server utime+stime "
             "(master + worker) per request or per MB, lower is better.",
             "other load: % of the server CPU / client CPU used by anything but the "
             "server / wrk during the run (should be ~0).", ""]
    out = {"meta": meta, "workloads": {}, "idle": None, "dist": None}
    for w in order:
        out["workloads"][w] = workload_table(w, workloads[w], servers, s, lines)
    if noisy:
        lines.append("WARNING: %d run(s) shared a CPU with other work (>%d%% other load on the "
                     "server or client CPU): figures are unreliable; rerun on a quiet machine."
                     % (noisy, s["max_other"]))
        lines.append("")
    out["noisy_runs"] = noisy
    idle_rows = read_tsv(idle_tsv)
    if idle_rows:
        out["idle"] = idle_table(idle_rows, servers, s, lines)
    dist_rows = read_tsv(dist_tsv)
    if dist_rows:
        out["dist"] = dist_table(dist_rows, steering, lines)

    sys.stdout.write("\n".join(lines) + "\n")
    with open(json_out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
