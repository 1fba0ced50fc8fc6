"""Session report from a session record: a text summary and a PNG of the dose.

The record may be one a crash cut short: it is read up to its last whole line
and the summary says so. What was delivered comes from the device's own
words: `phase-done` for a finished phase, else the last status line (pulses
in the current phase), so an interrupted, faulted or lost run is summarized
as honestly as a finished one.
"""
from __future__ import annotations

import json
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .escape import shown

UNDER_FRACTION = 0.8  # a stretch of a scan phase below this share of its J/cm target is under-dosed
GAP_SPACINGS = 1.5  # pulses further apart than this many spacings leave a gap in the path


class RecordError(ValueError):
    pass


@dataclass
class PhaseSummary:
    name: str = ""
    mode: str = ""
    target_mj: int = 0  # the phase's energy_j
    pulses_max: int = 0  # whole pulses the device will deliver
    pulse_uj: int = 0
    pulses: int = 0  # pulse events in this record
    measured_mj: float = 0.0
    under_mm: float = 0.0
    short_mj: int = 0
    skipped: int = 0
    done: bool = False
    delivered_mj: int = 0  # the device's word, filled in by summarize()
    aborted_points: int = 0
    undelivered_at_aborts: int = 0
    speed_high: int = 0
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Summary:
    path: Path | None = None
    counts_per_mm: int = 20
    header: dict | None = None
    end: dict | None = None
    cut: str = ""  # why the record stops early, if it does
    limits: dict[str, int] = field(default_factory=dict)
    phases: dict[int, PhaseSummary] = field(default_factory=lambda: defaultdict(PhaseSummary))
    faults: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pulses: list[tuple[int, int, int, int]] = field(default_factory=list)  # t_ms, phase, pos, uj
    speed: list[tuple[int, int, int, str]] = field(default_factory=list)  # t_ms, mm/s, phase, state
    last_status: dict[str, str] = field(default_factory=dict)
    session_mj: int | None = None
    resumed_phase: int = 0

    @property
    def total_pulses(self) -> int:
        return sum(p.pulses for p in self.phases.values())

    @property
    def ended(self) -> str:
        if self.end is None:
            return "no closing line (the run did not finish writing its record)"
        how = self.end.get("how", "?")
        return f"{how} {self.end['code']}" if self.end.get("code") else how

    def delivered_j(self) -> float:
        return sum(p.delivered_mj for p in self.phases.values()) / 1000

    def target_j(self) -> float:
        return sum(p.target_mj for p in self.phases.values()) / 1000

    def text(self) -> str:
        h = self.header or {}
        lines = []
        if h:
            lines.append(shown(h.get("program", "")))
            sha = h.get("program_sha256") or ""
            lines.append(f"file {shown(h.get('program_file'))} (sha256 {sha[:12]}), firmware "
                         f"{shown(h.get('firmware') or '?')} on {shown(h.get('board') or '?')}")
            lines.append(f"run {shown(h.get('utc', '?'))} (local {shown(h.get('local', '?'))})")
        lines.append(f"ended: {shown(self.ended)}")
        if self.end and self.end.get("detail") and self.end.get("how") != "fault":
            lines.append(f"  {shown(self.end['detail'])}")
        if self.cut:
            lines.append(f"record cut: {self.cut}")
        lines.append(f"{'phase':<22} target J  delivered J  measured J  pulses  under-dosed mm")
        for i in sorted(self.phases):
            p = self.phases[i]
            name = _fit(f"{i + 1} {shown(p.name)}", 22)
            started = p.done or p.delivered_mj or p.pulses
            under = f"{p.under_mm:14.1f}" if p.mode != "point" and started else f"{'-':>14}"
            lines.append(f"{name:<22} {p.target_mj / 1000:8.2f}  {p.delivered_mj / 1000:11.2f}  "
                         f"{p.measured_mj / 1000:10.2f}  {p.pulses:6d}  {under}")
        measured = sum(p.measured_mj for p in self.phases.values())
        lines.append(f"{'total':<22} {self.target_j():8.2f}  {self.delivered_j():11.2f}  "
                     f"{measured / 1000:10.2f}  {self.total_pulses:6d}")
        lines.extend(self.explain())
        t_end = self.pulses[-1][0] / 1000 if self.pulses else 0
        lines.append(f"device time to the last pulse: {t_end:.1f} s")
        lines.append("events: " + ", ".join(f"{shown(k)} {v}" for k, v in sorted(self.events.items())
                                            if k != "pulse"))
        lines.append("faults: " + ("; ".join(shown(f) for f in self.faults) if self.faults else "none"))
        return "\n".join(w for line in lines for w in (textwrap.wrap(line, 80, subsequent_indent="  ",
                                                                      drop_whitespace=False) or [""]))

    def explain(self) -> list[str]:
        """The dose that fell short, in words: where and why."""
        out = []
        for i in sorted(self.phases):
            p = self.phases[i]
            full_mj = p.pulses_max * p.pulse_uj // 1000
            where = f"phase {i + 1}"
            if i < self.resumed_phase:
                out.append(f"{where}: delivered in an earlier run of this session")
                continue
            if not p.done and full_mj and p.delivered_mj < full_mj:
                why = {"interrupted": "the run was interrupted", "fault": "a fault stopped the run",
                       "device lost": "the device was lost", "refused": "the device refused the run"}.get(
                    (self.end or {}).get("how", ""), "the record ends")
                out.append(f"{where}: {why} at {p.delivered_mj / 1000:.2f} of {full_mj / 1000:.2f} J: "
                           f"{(full_mj - p.delivered_mj) / 1000:.2f} J not delivered")
            if p.under_mm >= 0.1:
                band = p.values.get("speed_max_mm_s", "?")
                stretches = self.gaps(i)
                at = ", ".join(f"{a:.0f}-{b:.0f} mm" for a, b in stretches[:3])
                out.append(f"{where}: {p.under_mm:.1f} mm of path got no pulse: the hand went faster than the "
                           f"pulse rate allows (band up to {band} mm/s, over it {p.speed_high} times)"
                           + (f"; widest gaps at {at}" if at else ""))
            if p.skipped:
                out.append(f"{where}: {p.skipped} grid points held back by the dwell limit (the hand stayed "
                           "on a place that already had its energy)")
            if p.aborted_points:
                out.append(f"{where}: {p.aborted_points} trigger point(s) abandoned when the hand moved; "
                           f"{p.undelivered_at_aborts} pulses of them were not delivered")
            if p.done and p.short_mj:
                unit = "one pulse per point" if p.mode == "point" else "one pulse"
                out.append(f"{where}: {p.short_mj / 1000:.2f} J below the target: less than {unit}, "
                           "never delivered (whole pulses only)")
        return [w for line in out for w in textwrap.wrap(line, 80, subsequent_indent="  ")]

    def gaps(self, phase: int) -> list[tuple[float, float]]:
        """Stretches of a scan phase's path with no pulse, widest first (mm)."""
        p = self.phases[phase]
        try:
            spacing_mm = float(p.values.get("spacing_mm", "0"))
        except ValueError:
            return []
        if p.mode != "scan" or spacing_mm <= 0:
            return []
        pos = [q[2] / self.counts_per_mm for q in self.pulses if q[1] == phase]
        out = [(min(a, b), max(a, b)) for a, b in zip(pos, pos[1:]) if abs(b - a) > GAP_SPACINGS * spacing_mm]
        return sorted(out, key=lambda g: g[0] - g[1])


def _fit(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "~"


def read_lines(p: Path) -> tuple[list[tuple[int, str]], str]:
    """(line number, text) for every whole line, and a note if the record
    was cut mid-line. Bytes that are not UTF-8 are an error naming where."""
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise RecordError(f"cannot read {p}: {e.strerror}") from e
    cut = ""
    if raw and not raw.endswith(b"\n"):
        last_nl = raw.rfind(b"\n") + 1
        tail = raw[last_nl:]
        try:
            json.loads(tail.decode("utf-8"))  # a whole last line that only lacks its newline is kept
        except (UnicodeDecodeError, ValueError):
            n = raw.count(b"\n") + 1
            cut = (f"line {n} is cut off after {len(tail)} bytes (a crash while writing?): "
                   f"read up to line {n - 1}")
            raw = raw[:last_nl]
    out = []
    offset = 0
    for n, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RecordError(f"{p}:{n}: byte 0x{line[e.start]:02X} at offset {offset + e.start} "
                              "is not UTF-8: not a session record") from e
        offset += len(line) + 1
        if text.strip():
            out.append((n, text))
    return out, cut


def summarize(path: str | Path) -> Summary:
    p = Path(path)
    s = Summary(path=p)
    lines, s.cut = read_lines(p)
    for n, raw in lines:
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise TypeError("not an object")
            _take(s, obj)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise RecordError(f"{p}:{n}: not a session record line ({e.__class__.__name__} {e})") from e
    if not s.pulses and not s.events and s.header is None:
        raise RecordError(f"{p}: no events in this record")
    _settle(s)
    return s


def _take(s: Summary, obj: dict) -> None:
    """One record line into the summary."""
    kind = obj["kind"]
    if kind == "header":
        s.header = obj
        s.limits.update({k: int(v) for k, v in (obj.get("limits") or {}).items()})
        s.counts_per_mm = int((obj.get("settings") or {}).get("counts_per_mm", s.counts_per_mm))
        for i, ph in enumerate(obj.get("phases") or []):
            ps = s.phases[i]
            ps.name, ps.mode = str(ph.get("name", "")), str(ph.get("mode", ""))
            ps.target_mj = round(float(ph.get("energy_j", 0)) * 1000)
            ps.values = {k: str(v) for k, v in ph.items()}
    elif kind == "end":
        s.end = obj
    elif kind == "reply" and "pulse_uj" in obj:
        ps = s.phases[int(obj["phase"])]
        ps.pulse_uj, ps.pulses_max = int(obj["pulse_uj"]), int(obj["pulses"])
    elif kind == "reply" and "power_w_max" in obj:
        s.limits.update({k: int(v) for k, v in obj.items() if k not in ("kind", "text")})
    elif kind == "reply" and "counts_per_mm" in obj:
        s.counts_per_mm = int(obj["counts_per_mm"])
    elif kind == "reply" and obj.get("resumed") == "1":
        s.resumed_phase = int(obj.get("phase", 0))
    elif kind == "reply" and "state" in obj and "ph" in obj:  # a STATUS reply
        s.last_status = {k: str(v) for k, v in obj.items()}
    elif kind == "status":
        s.last_status = {k: str(v) for k, v in obj.items()}
        if "t" in obj and "v_mm_s" in obj:
            s.speed.append((int(obj["t"]), int(obj["v_mm_s"]), int(obj.get("ph", 0)), str(obj.get("state", ""))))
    elif kind == "event":
        name = obj["name"]
        s.events[name] += 1
        if name == "pulse":
            ph = int(obj["ph"])
            s.pulses.append((int(obj["t_ms"]), ph, int(obj["pos"]), int(obj["uj"])))
            ps = s.phases[ph]
            ps.pulses += 1
            ps.measured_mj += int(obj["uj"]) / 1000
        elif name == "phase-done":
            ps = s.phases[int(obj["ph"])]
            ps.done = True
            ps.delivered_mj = int(obj["e_mj"])
            ps.under_mm = float(obj["under_mm"])
            ps.short_mj = int(obj["short_mj"])
            ps.skipped = int(obj.get("skipped", 0))
        elif name == "point-abort":
            ps = s.phases[int(obj["ph"])]
            ps.aborted_points += 1
            ps.undelivered_at_aborts += int(obj.get("undelivered", 0))
        elif name == "speed-high":
            s.phases[int(s.last_status.get("ph", 0))].speed_high += 1
        elif name == "fault":
            s.faults.append(str(obj.get("text", "")))
        elif name == "session-done":
            s.session_mj = int(obj["e_mj"])


def _settle(s: Summary) -> None:
    """Delivered energy per phase from the device's words: `phase-done` for
    a finished phase, the last status for the phase it stopped in, whole
    phases for those before it (a resumed session did them earlier)."""
    st = s.last_status
    cur = int(st["ph"]) if "ph" in st else None
    for i, ps in s.phases.items():
        full = ps.pulses_max * ps.pulse_uj // 1000
        if ps.done:
            continue
        if cur is not None and i < cur:
            ps.delivered_mj = full
        elif cur is not None and i == cur and "pulses" in st:
            ps.delivered_mj = int(st["pulses"]) * ps.pulse_uj // 1000
            ps.under_mm = float(st.get("under_mm", ps.under_mm))
        else:
            ps.delivered_mj = ps.pulses * ps.pulse_uj // 1000
        if s.session_mj is not None and st.get("state") == "DONE":
            ps.delivered_mj = full


# -- the PNG

# Phase styles readable in grey: lightness steps apart, each with its own hatch.
PHASE_FILL = ["#2b2b2b", "#9a9a9a", "#d8d8d8", "#5e5e5e", "#bdbdbd", "#444444", "#f0f0f0", "#7a7a7a"]
PHASE_HATCH = ["", "///", "...", "xxx", "\\\\\\", "+++", "ooo", "---"]
PHASE_LINE = [(0, (6, 2)), (0, (1, 1.5)), (0, (3, 1, 1, 1)), (0, (8, 3)), (0, (2, 2)), (0, (4, 1, 1, 1, 1, 1)),
              (0, (1, 3)), (0, (10, 2))]  # never solid: solid is the measured peak
ALERT = "#c00000"  # marks and limits: dark enough to read black in grey


def plot(s: Summary, png: str | Path) -> Path:
    import matplotlib.pyplot as plt

    out = Path(png)
    fig = figure(s)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def figure(s: Summary):
    """The report page: header, dose along the path, hand speed, pulse
    energy, pulse rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.27, 13.5))
    grid = fig.add_gridspec(5, 1, height_ratios=[0.85, 1.5, 1, 1, 1], hspace=0.55,
                            left=0.09, right=0.74, top=0.985, bottom=0.04)
    head = fig.add_subplot(grid[0])
    _header(head, s)
    _dose_along_path(fig.add_subplot(grid[1]), s)
    _speed(fig.add_subplot(grid[2]), s)
    _pulse_energy(fig.add_subplot(grid[3]), s)
    _pulse_rate(fig.add_subplot(grid[4]), s)
    return fig


def _legend(ax, first: int = 0) -> None:
    """Outside the plot, to its right: a legend never covers data. The last
    `first` entries (the phases' bars, drawn last) go to the top."""
    handles, labels = ax.get_legend_handles_labels()
    if first:
        handles, labels = handles[-first:] + handles[:-first], labels[-first:] + labels[:-first]
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5,
                  frameon=False, borderaxespad=0)


def _header(ax, s: Summary) -> None:
    ax.axis("off")
    h = s.header or {}
    delivered, target = s.delivered_j(), s.target_j()
    rows = [
        ("program", f"{shown(h.get('program', '?'))}  ({shown(h.get('program_file') or '?')}, sha256 "
                    f"{(h.get('program_sha256') or '')[:12]})"),
        ("run", f"{shown(h.get('utc', '?'))}, local {shown(h.get('local', '?'))}"),
        ("device", f"firmware {shown(h.get('firmware') or '?')} on {shown(h.get('board') or '?')}, "
                   f"host {shown(h.get('host', '?'))}"),
        ("delivered", f"{delivered:.2f} J of {target:.2f} J target"
                      + "".join(f";  phase {i + 1}: {p.delivered_mj / 1000:.1f}/{p.target_mj / 1000:.0f} J"
                                for i, p in sorted(s.phases.items()))),
        ("ended", shown(s.ended) + (f"  (record cut: {s.cut})" if s.cut else "")),
        ("faults", "; ".join(shown(f) for f in s.faults) if s.faults else "none"),
    ]
    how = (s.end or {}).get("how")
    title = "Treatment record" + ("" if how == "done" else f": {shown(s.ended).upper()}, NOT COMPLETE")
    ax.text(0, 1, title, fontsize=13, weight="bold", va="top", transform=ax.transAxes,
            color="black" if how == "done" else ALERT)
    for k, (label, value) in enumerate(rows):
        y = 0.78 - k * 0.15
        ax.text(0, y, label, fontsize=8.5, weight="bold", va="top", transform=ax.transAxes)
        ax.text(0.14, y, _fit(value, 130), fontsize=8.5, va="top", transform=ax.transAxes, wrap=True)


def _phase_label(s: Summary, ph: int) -> str:
    return _fit(f"phase {ph + 1} {shown(s.phases[ph].name)}", 30) if ph in s.phases else f"phase {ph + 1}"


def _dose_along_path(ax, s: Summary) -> None:
    """Measured J per cm of skin along the path, stacked by phase, with each
    scan phase's target J/cm, the peak in any dwell window against the dwell
    limit, hotspots (phases overlapping) and under-dosed stretches."""
    from matplotlib.patheffects import withStroke

    bins: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for _, ph, pos, uj in s.pulses:
        bins[ph][int((pos / s.counts_per_mm) // 10)] += uj / 1e6
    ax.set(title="Energy per centimetre of skin (photodiode)", xlabel="position along the path (cm)",
           ylabel="J/cm")
    if not s.pulses:
        ax.text(0.5, 0.5, "no pulses in this record", ha="center", va="center", transform=ax.transAxes)
        return
    cms = [b for d in bins.values() for b in d]
    xs = list(range(min(cms), max(cms) + 1))
    bottom = [0.0] * len(xs)
    for ph in sorted(bins):
        ys = [bins[ph].get(x, 0.0) for x in xs]
        ax.bar([x + 0.5 for x in xs], ys, bottom=bottom, width=0.9, color=PHASE_FILL[ph % 8],
               hatch=PHASE_HATCH[ph % 8], edgecolor="black", linewidth=0.4, label=_phase_label(s, ph))
        bottom = [a + b for a, b in zip(bottom, ys)]
    # each scan phase's target: its energy spread over the stretch it covered
    targets: dict[int, tuple[int, int, float]] = {}
    for ph in sorted(bins):
        p = s.phases.get(ph)
        if p is not None and p.mode == "scan" and bins[ph]:
            lo, hi = min(bins[ph]), max(bins[ph]) + 1
            targets[ph] = (lo, hi, p.target_mj / 1000 / (hi - lo))
    lim = s.limits["dwell_mj_per_cm_max"] / 1000 if "dwell_mj_per_cm_max" in s.limits else 0.0
    top = max([*bottom, lim, *(t for _, _, t in targets.values())])
    marked = False
    for ph, (lo, hi, target) in targets.items():
        ax.hlines(target, lo, hi, colors="black", linestyles=[PHASE_LINE[ph % 8]], linewidth=2.0,
                  label=f"phase {ph + 1} target {target:.1f} J/cm")
        for x in range(lo, hi):
            if bins[ph].get(x, 0.0) < UNDER_FRACTION * target:
                # below the axis, where no bar is: a thick bar under the stretch
                ax.plot([x + 0.05, x + 0.95], [-0.035 * top] * 2, color=ALERT, lw=5, solid_capstyle="butt",
                        label=None if marked else "under-dosed (< 80 % of target)")
                marked = True
    hot = [x for x in xs if sum(1 for ph in bins if bins[ph].get(x, 0.0) > 0) > 1]
    if hot:
        ax.plot([x + 0.5 for x in hot], [bottom[xs.index(x)] + top * 0.04 for x in hot], "v", color=ALERT,
                markersize=5, linestyle="none", label="hotspot (phases overlap)")
    peak = _dwell_peaks(s)
    if peak:
        px = sorted(peak)
        ax.step([x for x in px] + [px[-1] + 1], [peak[x] for x in px] + [peak[px[-1]]], where="post",
                color="black", linewidth=1.0, path_effects=[withStroke(linewidth=3, foreground="white")],
                label=f"most in any {s.limits.get('dwell_window_ms', 0) / 1000:g} s")
    if lim:
        ax.axhline(lim, color=ALERT, linestyle="-", linewidth=2.4, alpha=0.8,
                   label=f"dwell limit {lim:g} J/cm per {s.limits.get('dwell_window_ms', 0) / 1000:g} s")
    ax.set_ylim(-0.07 * top, top * 1.12)
    ax.axhline(0, color="black", linewidth=0.6)
    _legend(ax, first=len(bins))


def _dwell_peaks(s: Summary) -> dict[int, float]:
    """Per cm: the most energy that landed there within any dwell window."""
    window = s.limits.get("dwell_window_ms")
    if not window:
        return {}
    per_cm: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for t, _, pos, uj in s.pulses:
        per_cm[int((pos / s.counts_per_mm) // 10)].append((t, uj / 1e6))
    peaks = {}
    for cm, pts in per_cm.items():
        pts.sort()
        best = run = 0.0
        j = 0
        for t, e in pts:
            run += e
            while pts[j][0] <= t - window:
                run -= pts[j][1]
                j += 1
            best = max(best, run)
        peaks[cm] = best
    return peaks


def _spans(s: Summary) -> dict[int, tuple[float, float]]:
    """Device time (s) each phase was worked on, from the status lines."""
    spans: dict[int, tuple[float, float]] = {}
    for t, _, ph, state in s.speed:
        if state not in ("EMITTING", "PAUSED"):
            continue
        a, b = spans.get(ph, (t / 1000, t / 1000))
        spans[ph] = (min(a, t / 1000), max(b, t / 1000))
    return spans


def _speed(ax, s: Summary) -> None:
    ax.set(title="Hand speed", xlabel="device time (s)", ylabel="mm/s")
    if not s.speed:
        ax.text(0.5, 0.5, "no status lines in this record", ha="center", va="center", transform=ax.transAxes)
        return
    for ph, (a, b) in sorted(_spans(s).items()):
        p = s.phases.get(ph)
        if p is None or p.mode != "scan":
            continue
        lo, hi = float(p.values.get("speed_min_mm_s", 0)), float(p.values.get("speed_max_mm_s", 0))
        ax.fill_between([a, b], lo, hi, facecolor="#e6e6e6", edgecolor="#555555", hatch=PHASE_HATCH[ph % 8],
                        linewidth=0.5, label=f"phase {ph + 1} band {lo:g}-{hi:g} mm/s")
    ts = [t / 1000 for t, *_ in s.speed]
    ax.plot(ts, [v for _, v, *_ in s.speed], lw=0.7, color="black", label="hand speed")
    out_t, out_v = [], []
    for t, v, ph, state in s.speed:
        p = s.phases.get(ph)
        if state == "EMITTING" and p is not None and p.mode == "scan":
            if v > float(p.values.get("speed_max_mm_s", 1e9)) or v < float(p.values.get("speed_min_mm_s", 0)):
                out_t.append(t / 1000)
                out_v.append(v)
    if out_t:
        ax.plot(out_t, out_v, "x", color=ALERT, markersize=3.5, label="out of band while emitting")
    _legend(ax)


def _pulse_energy(ax, s: Summary) -> None:
    ax.set(title="Energy of each pulse (photodiode) against nominal +-20 %", xlabel="device time (s)",
           ylabel="mJ")
    if not s.pulses:
        return
    by_phase: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for q in s.pulses:
        by_phase[q[1]].append(q)
    for ph, pts in sorted(by_phase.items()):
        p = s.phases.get(ph)
        t0, t1 = pts[0][0] / 1000, pts[-1][0] / 1000
        if p is not None and p.pulse_uj:
            nom = p.pulse_uj / 1000
            ax.fill_between([t0, t1], nom * 0.8, nom * 1.2, facecolor="#ececec", edgecolor="#777777",
                            linewidth=0.5, label="nominal +-20 %" if ph == min(by_phase) else None)
            ax.hlines(nom, t0, t1, colors="black", linestyles="--", linewidth=0.8,
                      label="nominal" if ph == min(by_phase) else None)
        ax.plot([q[0] / 1000 for q in pts], [q[3] / 1000 for q in pts], linestyle="none",
                marker="os^dv<>p"[ph % 8], markersize=1.6, color=PHASE_FILL[ph % 8] if ph % 8 != 2 else "#6e6e6e",
                label=_phase_label(s, ph))
    _legend(ax)


def _pulse_rate(ax, s: Summary) -> None:
    ax.set(title="Pulse rate (pulses in each second)", xlabel="device time (s)", ylabel="Hz")
    if not s.pulses:
        return
    counts: dict[int, int] = defaultdict(int)
    for t, *_ in s.pulses:
        counts[t // 1000] += 1
    xs = list(range(min(counts), max(counts) + 1))
    ax.step(xs, [counts.get(x, 0) for x in xs], where="post", color="black", lw=0.8, label="pulse rate")
    spans = _spans(s)
    first = True
    for ph, (a, b) in sorted(spans.items()):
        p = s.phases.get(ph)
        if p is None or not s.limits or "rate_hz" not in p.values:
            continue
        rate = _device_rate(p, s.limits)
        ax.hlines(rate, a, b, colors=ALERT, linestyles="--", linewidth=1.2,
                  label="the phase's rate limit" if first else None)
        first = False
    if "rate_hz_max" in s.limits:
        ax.axhline(s.limits["rate_hz_max"], color="black", linestyle=":", linewidth=1.0,
                   label=f"device maximum {s.limits['rate_hz_max']} Hz")
    ax.set_ylim(bottom=0)
    _legend(ax)


def _device_rate(p: PhaseSummary, limits: dict[str, int]) -> float:
    rate = min(int(p.values["rate_hz"]), limits.get("rate_hz_max", 10**6))
    period_us = -(-1_000_000 // rate)
    if p.pulse_uj and limits.get("avg_power_mw_max"):
        period_us = max(period_us, -(-p.pulse_uj * 1000 // limits["avg_power_mw_max"]))
    return 1e6 / period_us
