"""Session report from a session record: a text summary and a PNG with the
pulses along the path, the energy per centimetre of skin and the hand speed."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


class RecordError(ValueError):
    pass


@dataclass
class PhaseSummary:
    pulses: int = 0
    nominal_mj: int = 0
    measured_mj: float = 0.0
    under_mm: float = 0.0
    short_mj: int = 0
    done: bool = False


@dataclass
class Summary:
    counts_per_mm: int = 20
    phases: dict[int, PhaseSummary] = field(default_factory=lambda: defaultdict(PhaseSummary))
    faults: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pulses: list[tuple[int, int, int, int]] = field(default_factory=list)  # t_ms, phase, pos, uj
    speed: list[tuple[int, int]] = field(default_factory=list)  # t_ms, mm/s
    session_mj: int | None = None

    @property
    def total_pulses(self) -> int:
        return sum(p.pulses for p in self.phases.values())

    def text(self) -> str:
        lines = ["phase  pulses  nominal J  measured J  short J  under-dosed mm"]
        for i in sorted(self.phases):
            p = self.phases[i]
            lines.append(f"{i + 1:>5}  {p.pulses:6d}  {p.nominal_mj / 1000:9.2f}  {p.measured_mj / 1000:10.2f}"
                         f"  {p.short_mj / 1000:7.2f}  {p.under_mm:14.1f}")
        total = sum(p.nominal_mj for p in self.phases.values())
        measured = sum(p.measured_mj for p in self.phases.values())
        lines.append(f"total  {self.total_pulses:6d}  {total / 1000:9.2f}  {measured / 1000:10.2f}")
        t_end = self.pulses[-1][0] / 1000 if self.pulses else 0
        lines.append(f"device time to the last pulse: {t_end:.1f} s")
        lines.append("events: " + ", ".join(f"{k} {v}" for k, v in sorted(self.events.items()) if k != "pulse"))
        lines.append("faults: " + ("; ".join(self.faults) if self.faults else "none"))
        return "\n".join(lines)


def summarize(path: str | Path) -> Summary:
    p = Path(path)
    s = Summary()
    pulse_uj: dict[int, int] = {}
    try:
        lines = p.read_text().splitlines()
    except OSError as e:
        raise RecordError(f"cannot read {p}: {e.strerror}") from e
    for n, raw in enumerate(lines, 1):
        try:
            _take(s, pulse_uj, json.loads(raw))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise RecordError(f"{p}:{n}: not a session record line ({e.__class__.__name__} {e})") from e
    if not s.pulses and not s.events:
        raise RecordError(f"{p}: no events in this record")
    return s


def _take(s: Summary, pulse_uj: dict[int, int], obj: dict) -> None:
    """One record line into the summary."""
    kind = obj["kind"]
    if kind == "reply" and "pulse_uj" in obj:
        pulse_uj[int(obj["phase"])] = int(obj["pulse_uj"])
    elif kind == "status":
        s.speed.append((int(obj["t"]), int(obj["v_mm_s"])))
    elif kind == "event":
        name = obj["name"]
        s.events[name] += 1
        if name == "pulse":
            ph = int(obj["ph"])
            s.pulses.append((int(obj["t_ms"]), ph, int(obj["pos"]), int(obj["uj"])))
            ps = s.phases[ph]
            ps.pulses += 1
            ps.nominal_mj = ps.pulses * pulse_uj.get(ph, 0) // 1000
            ps.measured_mj += int(obj["uj"]) / 1000
        elif name == "phase-done":
            ps = s.phases[int(obj["ph"])]
            ps.done = True
            ps.under_mm = float(obj["under_mm"])
            ps.short_mj = int(obj["short_mj"])
        elif name == "fault":
            s.faults.append(obj.get("text", ""))
        elif name == "session-done":
            s.session_mj = int(obj["e_mj"])


def plot(s: Summary, png: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 11))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray"]
    by_phase: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for p in s.pulses:
        by_phase[p[1]].append(p)
    for ph, pts in sorted(by_phase.items()):
        ax1.scatter([p[0] / 1000 for p in pts], [p[2] / s.counts_per_mm for p in pts], s=3,
                    color=colours[ph % 8], label=f"phase {ph + 1}")
    ax1.set(title="Pulses along the path", xlabel="device time (s)", ylabel="handpiece position (mm)")
    ax1.legend(loc="upper right", markerscale=4)

    bins: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for t, ph, pos, uj in s.pulses:
        bins[ph][int((pos / s.counts_per_mm) // 10)] += uj / 1e6
    lo = min((b for d in bins.values() for b in d), default=0)
    hi = max((b for d in bins.values() for b in d), default=0)
    xs = list(range(lo, hi + 1))
    bottom = [0.0] * len(xs)
    for ph in sorted(bins):
        ys = [bins[ph].get(x, 0.0) for x in xs]
        ax2.bar(xs, ys, bottom=bottom, width=0.9, color=colours[ph % 8], label=f"phase {ph + 1}")
        bottom = [a + b for a, b in zip(bottom, ys)]
    ax2.set(title="Energy per centimetre of skin (measured)", xlabel="position (cm)", ylabel="energy (J)")
    ax2.legend(loc="upper right")

    if s.speed:
        ax3.plot([t / 1000 for t, _ in s.speed], [v for _, v in s.speed], lw=0.8, color="tab:blue")
    ax3.set(title="Hand speed", xlabel="device time (s)", ylabel="speed (mm/s)")
    fig.tight_layout()
    out = Path(png)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
