#!/usr/bin/env python3
"""h2_report.py - turn bench/h2's raw results into tables and JSON.

    h2_report.py RUNS_TSV IDLE_TSV META_JSON [JSON_OUT]

RUNS_TSV rows:  workload round server succeeded done seconds rps cpu_ticks
                clk_tck errors other_load_server_cpu_pct
                other_load_client_cpu_pct protocol
IDLE_TSV rows:  server conns pss_before_kb pss_after_kb rss_before_kb
                rss_after_kb open_conns
META_JSON:      settings (servers: saker first), machine and versions,
                copied into the JSON.

Ratios are saker/other. CPU per request is the server's CPU time divided by
the requests h2load counted as succeeded; a run with failures is kept,
marked FAILED and counted under the tables.
"""

import json
import sys

from tables import fmt, median, ratio, read_tsv

TITLES = {
    "h2-tls": "h2-tls: GET /plaintext, HTTP/2 over TLS",
    "h2c": "h2c: GET /plaintext, HTTP/2 in clear text (prior knowledge)",
    "h2-static": "h2-static: GET /file4k.bin (4096-byte file), HTTP/2 over TLS",
}


def main():
    runs_tsv, idle_tsv, meta_json = sys.argv[1:4]
    json_out = sys.argv[4] if len(sys.argv) > 4 else None
    with open(meta_json) as f:
        meta = json.load(f)
    servers = meta["settings"]["servers"]
    others = servers[1:]
    max_other = meta["settings"]["max_other"]

    workloads, order = {}, []
    noisy = failed = 0
    for (w, rnd, srv, ok, done, secs, rps, ticks, tck, errs, sother, cother,
         proto) in read_tsv(runs_tsv):
        if w not in workloads:
            workloads[w] = {s: [] for s in servers}
            order.append(w)
        ok, ticks, tck = int(ok), int(ticks), int(tck)
        cpu_s = ticks / tck
        workloads[w][srv].append({
            "round": int(rnd),
            "succeeded": ok,
            "done": int(done),
            "seconds": float(secs),
            "requests_per_sec": float(rps),
            "cpu_seconds": cpu_s,
            "cpu_us_per_request": cpu_s * 1e6 / ok if ok else None,
            "failed": errs != "-",
            "errors": None if errs == "-" else errs,
            "other_load_server_cpu_pct": float(sother),
            "other_load_client_cpu_pct": float(cother),
            "protocol": proto,
        })
        if max(float(sother), float(cother)) > max_other:
            noisy += 1
        if errs != "-":
            failed += 1

    s = meta["settings"]
    print("bench/h2: %s; h2load -t1 -c%d -m%d, %d s runs (+%d s warm-up), %d rounds; medians"
          % (meta["machine"]["summary"], s["connections"], s["streams"], s["duration"],
             s["warmup"], s["rounds"]))
    summary = {}
    colw = 11
    for w in order:
        runs = workloads[w]
        med = {}
        for srv in servers:
            rs = runs[srv]
            med[srv] = {
                "requests_per_sec": median([r["requests_per_sec"] for r in rs]),
                "cpu_us_per_request": median([r["cpu_us_per_request"] for r in rs
                                              if r["cpu_us_per_request"] is not None]),
                "runs": len(rs),
                "failed_runs": sum(r["failed"] for r in rs),
            }
        rat = {o: {"requests_per_sec": ratio(med["saker"]["requests_per_sec"],
                                             med[o]["requests_per_sec"]),
                   "cpu_us_per_request": ratio(med["saker"]["cpu_us_per_request"],
                                               med[o]["cpu_us_per_request"])}
               for o in others}
        summary[w] = {"medians": med, "ratios": rat, "runs": runs}
        print()
        print(TITLES.get(w, w))
        head = "  %-22s" % "" + "".join("%*s" % (colw, x) for x in servers) + \
            "".join("%*s" % (colw + 2, "saker/" + o) for o in others)
        print(head)
        print("  %-22s" % "req/s (>1 better)" +
              "".join("%*s" % (colw, fmt(med[x]["requests_per_sec"], ",.0f")) for x in servers) +
              "".join("%*s" % (colw + 2, fmt(rat[o]["requests_per_sec"], ".2f")) for o in others))
        print("  %-22s" % "CPU us/req (<1 better)" +
              "".join("%*s" % (colw, fmt(med[x]["cpu_us_per_request"], ".2f")) for x in servers) +
              "".join("%*s" % (colw + 2, fmt(rat[o]["cpu_us_per_request"], ".2f")) for o in others))
        bad = [x for x in servers if med[x]["failed_runs"]]
        if bad:
            print("  FAILED runs: " + ", ".join("%s %d of %d" % (x, med[x]["failed_runs"],
                                                                 med[x]["runs"]) for x in bad))

    idle = {}
    for srv, conns, pss0, pss1, rss0, rss1, open_ in read_tsv(idle_tsv):
        conns = int(conns)
        idle[srv] = {
            "connections": conns,
            "open_connections": int(open_),
            "rss_before_kb": int(rss0), "rss_after_kb": int(rss1),
            "pss_before_kb": int(pss0), "pss_after_kb": int(pss1),
            "rss_bytes_per_connection": (int(rss1) - int(rss0)) * 1024 / conns,
            "pss_bytes_per_connection": (int(pss1) - int(pss0)) * 1024 / conns,
        }
    if "saker" in idle:
        print()
        n = idle["saker"]["connections"]
        reqs = meta["settings"].get("idle_requests", 1)
        print("h2-idle: %d HTTP/2 connections over TLS, %s, then idle"
              % (n, "one request each" if reqs == 1 else "%d requests each" % reqs))
        here = [x for x in servers if x in idle]
        print("  %-22s" % "" + "".join("%*s" % (colw, x) for x in here) +
              "".join("%*s" % (colw + 2, "saker/" + o) for o in others if o in idle))
        for key, label in (("rss_bytes_per_connection", "Rss B/conn (<1 better)"),
                           ("pss_bytes_per_connection", "Pss B/conn")):
            print("  %-22s" % label +
                  "".join("%*s" % (colw, fmt(idle[x][key], ",.0f")) for x in here) +
                  "".join("%*s" % (colw + 2, fmt(ratio(idle["saker"][key], idle[o][key]), ".2f"))
                          for o in others if o in idle))
        for x in here:
            if idle[x]["open_connections"] < idle[x]["connections"]:
                print("  warning: %s had only %d of %d connections open when measured"
                      % (x, idle[x]["open_connections"], idle[x]["connections"]))
        summary["h2-idle"] = {"servers": idle,
                              "ratios": {o: {"rss": ratio(idle["saker"]["rss_bytes_per_connection"],
                                                          idle[o]["rss_bytes_per_connection"]),
                                             "pss": ratio(idle["saker"]["pss_bytes_per_connection"],
                                                          idle[o]["pss_bytes_per_connection"])}
                                         for o in others if o in idle}}

    if order:
        print()
        print("raw runs (other load: % of the server CPU / of the client CPU used by anything else)")
        for w in order:
            for srv in servers:
                for r in workloads[w][srv]:
                    print("  %-9s r%-2d %-6s %10.0f req/s %8.2f us/req %9d req  other %4.1f%%/%4.1f%%  %s%s"
                          % (w, r["round"], srv, r["requests_per_sec"],
                             r["cpu_us_per_request"] or 0, r["succeeded"],
                             r["other_load_server_cpu_pct"], r["other_load_client_cpu_pct"],
                             r["protocol"], "  " + r["errors"] if r["errors"] else ""))
    print()
    print("ratios are saker/other: req/s above 1, CPU per request and memory below 1 favour saker")
    if failed:
        print("WARNING: %d run(s) had failed, errored, timed-out or non-2xx requests (FAILED above)"
              % failed)
    if noisy:
        print("warning: %d run(s) were noisy (other load above %d%%)" % (noisy, max_other))

    if json_out:
        meta["results"] = summary
        meta["failed_runs"] = failed
        meta["noisy_runs"] = noisy
        with open(json_out, "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
