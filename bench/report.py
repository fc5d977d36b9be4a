"""Renders a run (the dict bench/run.py builds, also written as latest.json) as Markdown and PNG.

The Markdown has three parts: what was measured on (date, machine, interpreter, every loop's
version), the throughput table (ops/s per loop, ratio to asyncio with its min–max spread), and
for server workloads the efficiency table (requests per server CPU-second, the robust number
when the load client saturates). The chart shows the same ratios as bars, one group per workload.

A run with loops on other interpreters (``uvcffi@pypy``) names each interpreter and its loops in
the heading, and a run with pair ratios (``uvcffi@pypy ÷ uvloop``: run.py's ``pairs``) has one
more column per pair in both tables and one more chart panel per pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

__all__ = ["markdown", "chart", "update_readme", "START", "END"]

#: The markers between which ``update_readme`` writes the latest results.
START = "<!-- bench:latest:start -->"
END = "<!-- bench:latest:end -->"


def _slices(meta: Dict[str, Any]) -> str:
    """How a round of a server workload was cut, when it was (runs before slices: nothing)."""
    slices = meta.get("slices") or 1
    if slices == 1:
        return ""
    each = meta["duration_s"] / slices
    return f" (a server workload's round: {slices} interleaved slices of {each:g} s per loop)"


def _h(x: Any) -> str:
    from .run import human

    return human(x)


def _cell(res: Dict[str, Any], loop: str, baseline: str, value: str, ratio: str) -> str:
    if res.get(value) is None:
        status = res.get("status", "n/a")
        if status.startswith("skip"):
            return "skipped"
        if status.startswith("error"):
            return "error"
        return "—"
    text = _h(res[value])
    if loop != baseline and res.get(ratio) is not None:
        lo, hi = res[ratio + "_min"], res[ratio + "_max"]
        text += f" ×{res[ratio]:.2f} [{lo:.2f}–{hi:.2f}]"
    return text


#: Marks a pair ratio by ops/s whose load client was the limit (run.py's CLIENT_BOUND).
CLIENT_MARK = "†"


def _pair_cell(pair: Dict[str, Any], ratio: str, mark: bool) -> str:
    if pair.get(ratio) is None:
        return "—"
    text = f"{pair[ratio]:.2f} [{pair[ratio + '_min']:.2f}–{pair[ratio + '_max']:.2f}]"
    if mark and pair.get("client_load") is not None and pair["client_load"] >= _client_bound():
        text += f" {CLIENT_MARK}"
    return text


def _client_bound() -> float:
    from .run import CLIENT_BOUND

    return CLIENT_BOUND


def _table(run: Dict[str, Any], rows: List[Dict[str, Any]], value: str, ratio: str) -> List[str]:
    cols = run["columns"]
    baseline = run["meta"]["baseline"]
    pairs = [p["label"] for p in run.get("pairs", [])]
    head = cols + [f"**{label}**" for label in pairs]
    lines = ["| workload | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for wl in rows:
        cells = [_cell(wl["results"].get(c, {}), c, baseline, value, ratio) for c in cols]
        cells += [_pair_cell(wl.get("pairs", {}).get(label, {}), ratio, ratio == "ratio") for label in pairs]
        lines.append(f"| {wl['name']} | " + " | ".join(cells) + " |")
    return lines


def _interpreters(meta: Dict[str, Any]) -> str:
    """'CPython 3.11.7' for a run on one interpreter (and runs before interpreters were
    recorded); else each interpreter, its path and its loops."""
    interps = meta.get("interpreters") or {}
    if len(interps) <= 1:
        return f"Interpreter: {meta['python']}."
    parts = []
    for path, it in interps.items():
        what = it.get("python", "?") + (f" (PyPy {it['pypy']})" if it.get("pypy") else "")
        runner = ", the runner's" if it.get("runner") else ""
        parts.append(f"{what} — `{path}`{runner}: {', '.join(it.get('loops', []))}")
    return "Interpreters: " + "; ".join(parts) + "."


def _share_table(run: Dict[str, Any], rows: List[Dict[str, Any]], value: str) -> List[str]:
    cols = run["columns"]
    lines = ["| workload | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for wl in rows:
        cells = []
        for c in cols:
            share = wl["results"].get(c, {}).get(value)
            cells.append("—" if share is None else f"{share:.0%}")
        lines.append(f"| {wl['name']} | " + " | ".join(cells) + " |")
    return lines


def _capacity(mach: Dict[str, Any]) -> str:
    cap = mach.get("capacity")
    if cap is None:
        return ""
    probe = mach.get("capacity_probe_s", 0)
    return f" (both busy at once for {probe:g} s they gave {cap:.2f} cores' worth of CPU)"


def _pairs_legend(run: Dict[str, Any]) -> str:
    pairs = run.get("pairs", [])
    if not pairs:
        return ""
    names = ", ".join(f"**{p['label']}**" for p in pairs)
    return (
        f" {names}: the median of the per-round ratios of the two loops [min–max over rounds]; "
        f"{CLIENT_MARK} = the load client used {_client_bound():.0%} or more of its core with one of them "
        "(the client, not the server, set the pace): compare that row by requests per server "
        "CPU-second, in the next table."
    )


def markdown(run: Dict[str, Any]) -> str:
    meta = run["meta"]
    mach = meta["machine"]
    baseline = meta["baseline"]
    pinned = (
        f"server pinned to CPU {mach['server_cpu']}, load client to CPU {mach['client_cpu']}"
        if mach.get("server_cpu") is not None
        else "one core: server and client not pinned apart"
    )
    out = [
        f"### Benchmark results — {meta['date']}",
        "",
        f"`{meta['command']}` — mode **{meta['mode']}**, {meta['rounds']} interleaved rounds"
        f"{_slices(meta)}, {meta['elapsed_s']} s in all.  ",
        f"Machine: {mach['cpu']}, {mach['cores']} cores{_capacity(mach)}, {mach['os']}; {pinned}.  ",
        _interpreters(meta),
        "",
        "| loop | interpreter | version | task class |",
        "|---|---|---|---|",
    ]
    for name, info in run["loops"].items():
        version = info.get("version", "?")
        if info.get("libuv"):
            version += f" (libuv {info['libuv']}" + (f", cffi {info['cffi']})" if info.get("cffi") else ")")
        interp = info.get("python", meta["python"])
        out.append(f"| {name} | {interp} | {version} | {info.get('tasks', '')} |")
    if "epoll (C)" in run["columns"]:
        out.append("| epoll (C) | — | bench/c/epoll_echo.c | "
                   "reference: the same echo load, minimal C server |")
    out += [
        "",
        f"**Throughput** — ops/s (requests/s, packets/s, spawns/s for I/O rows), median of the rounds; "
        f"×ratio to {baseline} = median of the per-round ratios [min–max over rounds]. "
        "— = not run (the row uses no tasks, so asyncio-pytask would equal asyncio)."
        + _pairs_legend(run),
        "",
    ]
    out += _table(run, run["workloads"], "ops_s", "ratio")
    servers = [wl for wl in run["workloads"] if wl.get("server")]
    if servers:
        out += [
            "",
            f"**Server efficiency** — requests per server CPU-second (server's rusage over the load), "
            f"median; ×ratio to {baseline} per round [min–max]. Higher is better; "
            "robust when the client saturates.",
            "",
        ]
        out += _table(run, servers, "eff", "eff_ratio")
        out += [
            "",
            "**Load client CPU** — the share of its core the load client used, median. Near 100% the "
            "client, not the server, set the pace: compare those rows by server efficiency.",
            "",
        ]
        out += _share_table(run, servers, "client_load")
    problems = []
    for wl in run["workloads"]:
        for loop, status in sorted(wl.get("status", {}).items()):
            problems.append(f"- {wl['name']} on {loop}: {status}")
    if problems or run.get("notes"):
        out += ["", "Notes:", ""]
        out += [f"- {n}" for n in run.get("notes", [])]
        out += problems
    return "\n".join(out) + "\n"


def chart(run: Dict[str, Any], path: Path) -> None:
    """Grouped bars of the ratio to the baseline per workload (throughput, and server efficiency
    when there are server workloads); whiskers span the min–max of the rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baseline = run["meta"]["baseline"]
    series = [c for c in run["columns"] if c != baseline]
    panels = [("ratio", run["workloads"], "throughput")]
    servers = [wl for wl in run["workloads"] if wl.get("server")]
    if servers:
        panels.append(("eff_ratio", servers, "requests per server CPU-second"))
    pairs = [p["label"] for p in run.get("pairs", [])]
    fig, axes = plt.subplots(
        len(panels) + len(pairs), 1, figsize=(max(8.0, 0.75 * len(run["workloads"]) + 3),
                                              4.2 * (len(panels) + len(pairs))), squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, label in zip(axes[len(panels):, 0], pairs):
        _pair_panel(ax, run["workloads"], label, colors)
    for ax, (key, rows, title) in zip(axes[:, 0], panels):
        width = 0.8 / max(1, len(series))
        for i, loop in enumerate(series):
            xs, ys, lo, hi = [], [], [], []
            for j, wl in enumerate(rows):
                res = wl["results"].get(loop, {})
                if res.get(key) is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(res[key])
                lo.append(res[key] - res[key + "_min"])
                hi.append(res[key + "_max"] - res[key])
            if xs:
                ax.bar(xs, ys, width, label=loop, color=colors[i % len(colors)], yerr=[lo, hi], capsize=2)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([wl["name"] for wl in rows], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(f"× {baseline}")
        ax.set_title(f"{title}: ratio to {baseline} (higher is better)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=min(4, max(1, len(series))))
    meta = run["meta"]
    interps = meta.get("interpreters") or {}
    pythons = " + ".join(it.get("python", "?") for it in interps.values()) or meta["python"]
    fig.suptitle(
        f"{pythons} · {meta['machine']['cores']} cores · {meta['date']} · {meta['mode']}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pair_panel(ax: Any, rows: List[Dict[str, Any]], label: str, colors: List[str]) -> None:
    """One pair's ratios per workload: by ops/s, and beside it by requests per server CPU-second
    for server rows; whiskers span the rounds."""
    for i, (key, what) in enumerate((("ratio", "ops/s"), ("eff_ratio", "requests per server CPU-second"))):
        xs, ys, lo, hi = [], [], [], []
        for j, wl in enumerate(rows):
            pair = wl.get("pairs", {}).get(label, {})
            if pair.get(key) is None:
                continue
            xs.append(j - 0.2 + 0.4 * i)
            ys.append(pair[key])
            lo.append(pair[key] - pair[key + "_min"])
            hi.append(pair[key + "_max"] - pair[key])
        if xs:
            ax.bar(xs, ys, 0.4, label=f"by {what}", color=colors[i], yerr=[lo, hi], capsize=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([wl["name"] for wl in rows], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(label)
    ax.set_title(f"{label}: median of per-round ratios (above 1: the first is faster)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def update_readme(path: Path, md: str, png: Path) -> None:
    """Replaces the text between ``START`` and ``END`` in ``path`` with ``md`` and a link to the
    chart (relative to the README). Raises ValueError when the markers are missing."""
    import os

    text = path.read_text()
    start, end = f"\n{START}\n", f"\n{END}\n"  # markers on lines of their own
    if start not in text or end not in text.partition(start)[2]:
        raise ValueError(f"{path} has no {START} ... {END} lines")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    rel = os.path.relpath(png.resolve(), path.resolve().parent)
    body = f"{md}\n![ratio to asyncio per workload]({rel})"
    path.write_text(head + start + body + end + tail)
