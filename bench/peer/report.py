"""Renders bench/serve_compare.sh's results as Markdown for docs/BENCHMARKS.md.

  /usr/bin/python3 bench/peer/report.py META INPROC_JSON RESULTS

META: key=value lines (command, machine, ...). INPROC_JSON: serve_bench's
Google Benchmark JSON. RESULTS: one line per point, "closed|open KIND
SETTING key=value ...", from wrk (bench/peer/post.lua) and the open-loop
generator (bench/peer/loadgen.cc) with the servers' peak memory. A setting
ending in "-bf16" ran in bf16 (detops --precision bf16; the peer under
torch.autocast), any other in fp32; the goals are compared within each
precision.
"""

import json
import os
import re
import sys

GOALS = {"http": 0.9, "throughput": 1.5, "p50": 0.75, "p99": 0.5, "rss": 0.5}


def parse_results(path):
    rows = []
    for line in open(path):
        parts = line.split()
        if len(parts) < 3:
            continue
        row = {"phase": parts[0], "kind": parts[1], "cfg": parts[2]}
        for kv in parts[3:]:
            k, _, v = kv.partition("=")
            try:
                row[k] = float(v)
            except ValueError:
                row[k] = v
        if row["phase"] == "closed":
            errors = sum(row.get("errors_" + e, 0) for e in ("connect", "read", "write", "status",
                                                             "timeout"))
            row["errors"] = errors
            row["ok_rps"] = (row["requests"] - row.get("errors_status", 0)) / row["seconds"]
            row["valid"] = row["requests"] > 0  # else its percentiles are 0, not fast
        else:
            # Latency is defined only when the server kept up: every request
            # sent in time was answered.
            row["valid"] = row["ok"] > 0 and row["unfinished"] == 0 and row["errors"] == 0
        rows.append(row)
    return rows


def precision(cfg):
    return "bf16" if cfg.endswith("-bf16") else "fp32"


def detops_cfg(cfg):
    """(workers, threads, batch) of a detops setting "[wW]tTbB[-bf16]"."""
    m = re.fullmatch(r"(?:w(\d+))?t(\d+)b(\d+)(?:-bf16)?", cfg)
    if not m:
        return None
    return int(m.group(1) or 1), int(m.group(2)), int(m.group(3))


def describe(kind, cfg):
    if kind == "detops":
        d = detops_cfg(cfg)
        if not d:
            return cfg
        w, t, b = d
        who = f"{w} workers × {t} thread{'s' if t != 1 else ''}" if w > 1 else \
            f"{t} thread{'s' if t != 1 else ''}"
        return f"{who}, batch ≤ {b}, {precision(cfg)}"
    m = re.fullmatch(r"w(\d+)t(\d+)(?:-bf16)?", cfg)
    if not m:
        return cfg
    a, b = m.groups()
    return (f"{a} worker{'s' if a != '1' else ''} × {b} torch thread{'s' if b != '1' else ''}, "
            + ("bf16 autocast" if precision(cfg) == "bf16" else "fp32"))


def ms(v):
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def lat(r, key):
    """A latency cell: "–" for a point without answers."""
    if r["phase"] == "closed" and not r["valid"]:
        return "–"
    if r["phase"] == "open" and r["ok"] == 0:
        return "–"
    return ms(r[key])


def mib(kb):
    return f"{kb / 1024:.0f}"


def verdict(ratio, goal, at_least):
    if ratio is None:
        return "–"
    met = ratio >= goal if at_least else ratio <= goal
    return "met" if met else "**not met**"


def inproc_next_to(inproc_json, cfg):
    """The in-process point serve_compare.sh measured right before a detops
    setting's HTTP points (inproc-CFG.json next to inproc.json), or None."""
    path = os.path.join(os.path.dirname(inproc_json), f"inproc-{cfg}.json")
    if not os.path.exists(path):
        return None
    points = [x for x in json.load(open(path))["benchmarks"]
              if x.get("run_type", "iteration") == "iteration"]
    return points[-1] if points else None


def main():
    meta = dict(line.rstrip("\n").split("=", 1) for line in open(sys.argv[1]) if "=" in line)
    inproc = {}
    for b in json.load(open(sys.argv[2]))["benchmarks"]:
        m = re.search(r"batch:(\d+)/threads:(\d+)", b["name"])
        if m and b.get("run_type", "iteration") == "iteration":
            inproc[(int(m[1]), int(m[2]))] = b
    rows = parse_results(sys.argv[3])
    closed = [r for r in rows if r["phase"] == "closed"]
    opened = [r for r in rows if r["phase"] == "open"]
    out = []
    p = out.append

    p("## Serving: `detops serve` against in-process, and against a Python peer")
    p("")
    p(f"`{meta['command']}` — {meta['machine']}; {meta['date']}; load average "
      f"{meta['load']}. {meta['detops']}; peer: {meta['peer']}; BLAS {meta['blas']}. Request: POST of one "
      f"{meta['image']} (`Content-Type: image/jpeg`); wrk with one thread for the closed "
      f"loop, `bench/peer/loadgen.cc` (fixed rate, latency from the scheduled send) for the "
      f"open loop; memory is the peak sum over all the server's processes while a point ran. "
      f"detops batcher delay {meta['delay_ms']} ms.")
    p("")
    answers = {r["kind"]: int(r["detections"]) for r in reversed(closed) if "detections" in r}
    if answers:
        p("Detections in one answer: " + ", ".join(f"{k} {v}" for k, v in sorted(answers.items()))
          + " (conf 0.25).")
        p("")
    p(f"Same network, same weights: {meta['port_check']}; at the served threshold: "
      f"{meta['port_check_default'] or 'not run'}.")
    p("")

    def best(rs, key, lowest):
        rs = [r for r in rs if key in r and (r["valid"] or not lowest)]
        if not rs:
            return None
        return (min if lowest else max)(rs, key=lambda r: r[key])

    by = lambda kind: [r for r in closed if r["kind"] == kind]
    det_c, peer_c = by("detops"), by("peer")

    # Goals, within each precision: both sides fp32, then both bf16.
    def goal_row(name, d, pr, key, fmt, unit, goal, at_least, where):
        cell = lambda r: f"{fmt(r[key])} {unit} ({where(r)})" if r else "–"
        ratio = d[key] / pr[key] if d and pr and pr[key] > 0 else None
        p(f"| {name} | {cell(d)} | {cell(pr)} | {'–' if ratio is None else f'{ratio:.2f}×'} | "
          f"{'≥' if at_least else '≤'} {goal}× | {verdict(ratio, goal, at_least)} |")

    conn_where = lambda r: f"{describe(r['kind'], r['cfg'])}, {int(r['conns'])} conn."
    cfg_where = lambda r: describe(r["kind"], r["cfg"])
    one = lambda rs: [r for r in rs if r["conns"] == 1]

    def peak(rs):  # the setting whose peak over its closed-loop points is lowest
        per = {}
        for r in rs:
            if r.get("rss_kb", 0) > per.get(r["cfg"], {}).get("rss_kb", 0):
                per[r["cfg"]] = r
        return min(per.values(), key=lambda r: r["rss_kb"]) if per else None

    for prec in ("fp32", "bf16"):
        det_p = [r for r in det_c if precision(r["cfg"]) == prec]
        peer_p = [r for r in peer_c if precision(r["cfg"]) == prec]
        if not det_p:
            continue
        p(f"Both sides in {prec}" + (" (the peer under `torch.autocast`)" if prec == "bf16" else "")
          + ":")
        p("")
        p("| figure | detops | peer, at its best setting for the figure | ratio | goal | |")
        p("|---|---|---|---|---|---|")
        for cfg in sorted({r["cfg"] for r in det_p}):
            w, t, b = detops_cfg(cfg)
            http = best([r for r in det_p if r["cfg"] == cfg], "ok_rps", False)
            # Against in-process at the same batch on the same number of cores
            # and in the same precision, measured right before this setting
            # (else, in fp32, at the start of the run).
            near = inproc_next_to(sys.argv[2], cfg)
            ref = near or (inproc.get((b, w * t)) if prec == "fp32" else None)
            when = ", measured just before" if near else ""
            if http and ref:
                ratio = http["ok_rps"] / ref["items_per_second"]
                who = f"{w} workers × {t} thread" if w > 1 else f"{t} threads"
                p(f"| HTTP ÷ in-process images/s, batch {b}, {who} (in process: {w * t} threads"
                  f"{when}) | {http['ok_rps']:.1f} ({int(http['conns'])} conn.) ÷ "
                  f"{ref['items_per_second']:.1f} | – | {ratio:.2f} | ≥ {GOALS['http']} | "
                  f"{verdict(ratio, GOALS['http'], True)} |")
        goal_row("saturated throughput", best(det_p, "ok_rps", False),
                 best(peer_p, "ok_rps", False), "ok_rps", lambda v: f"{v:.1f}", "req/s",
                 GOALS["throughput"], True, conn_where)
        goal_row("p50 at one connection", best(one(det_p), "p50_ms", True),
                 best(one(peer_p), "p50_ms", True), "p50_ms", ms, "ms", GOALS["p50"], False,
                 cfg_where)
        in_p = lambda kind, at: [r for r in opened if r["kind"] == kind and r["at"] == at and
                                 precision(r["cfg"]) == prec]
        d90 = best(in_p("detops", "peer90"), "p99_ms", True)
        p90 = best(in_p("peer", "own90"), "p99_ms", True)
        rate = f" ({p90['target_rps']:.0f} req/s)" if p90 else ""
        goal_row(f"p99 at 90 % of the peer's saturation{rate}", d90, p90, "p99_ms", ms, "ms",
                 GOALS["p99"], False, cfg_where)
        goal_row("resident memory under load, all processes", peak(det_p), peak(peer_p),
                 "rss_kb", mib, "MiB", GOALS["rss"], False, cfg_where)
        p("")

    # detops' own latency curve.
    own = [r for r in opened if r["kind"] == "detops" and r["at"] in ("own50", "own90")]
    if own:
        sats = []
        for prec in ("fp32", "bf16"):
            top = best([r for r in det_c if precision(r["cfg"]) == prec], "ok_rps", False)
            if top:
                sats.append(f"{top['ok_rps']:.1f} req/s in {prec}")
        p(f"detops at 50 % and 90 % of its own saturation in the same precision "
          f"({', '.join(sats)}), open loop:")
        p("")
        p("| setting | load | req/s | p50 ms | p99 ms | max ms | unanswered | peak RSS MiB |")
        p("|---|---|---|---|---|---|---|---|")
        for r in own:
            p(f"| {describe('detops', r['cfg'])} | {r['at'][3:]} % ({r['target_rps']:.1f}) | "
              f"{r['rps']:.1f} | {lat(r, 'p50_ms')} | {lat(r, 'p99_ms')} | {lat(r, 'max_ms')} | "
              f"{int(r['unfinished'] + r['errors'])} | {mib(r['rss_kb'])} |")
        p("")

    # In process.
    p("In process (`build/bench/serve_bench`: JPEG decode + letterbox + forward + NMS):")
    p("")
    p("| batch | threads | ms per batch | images/s | detections per image |")
    p("|---|---|---|---|---|")
    for (b, t), r in sorted(inproc.items()):
        p(f"| {b} | {t} | {ms(r['real_time'])} | {r['items_per_second']:.1f} | "
          f"{r.get('detections_per_image', 0):.1f} |")
    p("")
    near = [(cfg, inproc_next_to(sys.argv[2], cfg)) for cfg in sorted({r["cfg"] for r in det_c})]
    near = [(cfg, x) for cfg, x in near if x]
    if near:
        p("The same, each measured right before a detops setting's HTTP points "
          "(the reference of its HTTP ÷ in-process ratio):")
        p("")
        p("| before | batch | threads | ms per batch | images/s |")
        p("|---|---|---|---|---|")
        for cfg, x in near:
            m = re.search(r"batch:(\d+)/threads:(\d+)", x["name"])
            p(f"| {describe('detops', cfg)} | {m[1]} | {m[2]} | {ms(x['real_time'])} | "
              f"{x['items_per_second']:.1f} |")
        p("")

    # Every closed-loop point.
    p("Closed loop (wrk, one thread):")
    p("")
    p("| server | setting | connections | req/s | p50 ms | p99 ms | errors | peak RSS MiB | "
      "peak PSS MiB |")
    p("|---|---|---|---|---|---|---|---|---|")
    for r in closed:
        p(f"| {r['kind']} | {describe(r['kind'], r['cfg'])} | {int(r['conns'])} | "
          f"{r['ok_rps']:.1f} | {lat(r, 'p50_ms')} | {lat(r, 'p99_ms')} | {int(r['errors'])} | "
          f"{mib(r['rss_kb'])} | {mib(r['pss_kb'])} |")
    p("")

    # Every open-loop point.
    names = {"own50": "50 % of own", "own90": "90 % of own", "peer90": "90 % of peer's"}
    p("Open loop (`bench/peer/loadgen.cc`, fixed rate; saturation = the best closed-loop req/s "
      "of that server):")
    p("")
    p("A point with unanswered requests did not keep up: its percentiles cover only the answered "
      "ones, and it is left out of the best-setting choice above.")
    p("")
    p("| server | setting | load | target req/s | req/s | p50 ms | p99 ms | max ms | unanswered |")
    p("|---|---|---|---|---|---|---|---|---|")
    for r in opened:
        p(f"| {r['kind']} | {describe(r['kind'], r['cfg'])} | {names.get(r['at'], r['at'])} | "
          f"{r['target_rps']:.1f} | {r['rps']:.1f} | {lat(r, 'p50_ms')} | {lat(r, 'p99_ms')} | "
          f"{lat(r, 'max_ms')} | {int(r['unfinished'] + r['errors'])} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
