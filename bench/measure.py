"""Run one measured step in a fresh Python process, and trace where its time and memory go.

Parent side (`run_step`): starts `python -m bench.steps <step> <args>`, samples the child's RSS
every `interval` seconds from /proc, kills it (SIGKILL) if it passes `cap_bytes` so a runaway step
cannot bring the OOM killer onto other processes of this shared machine, and reaps it with
`os.wait4` to get the child's own `ru_maxrss` (the peak RSS of that step alone).

Child side (`Tracer`): wraps named functions so each call writes an enter/exit event (monotonic
time, VmRSS, VmHWM) to a JSONL file, flushed at once, which survives the child being killed. The
parent joins those events with its RSS samples (both on CLOCK_MONOTONIC) into a phase table.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

GIB = 1 << 30


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM of a process, in bytes (empty once it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value, _unit = line.split()
                    out[key[:-1]] = int(value) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def mem_info() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, rest = line.split(":", 1)
            out[key] = int(rest.split()[0]) * 1024
    return out


def default_cap() -> int:
    """Leave room for everyone else on the machine: at most 20 GiB, and 2 GiB below what the
    kernel says is available now."""
    return min(20 * GIB, mem_info()["MemAvailable"] - 2 * GIB)


# --- child side ------------------------------------------------------------------------------


class Tracer:
    def __init__(self, events: Path):
        self._f = events.open("a", encoding="utf-8")
        self.stack: list[str] = []
        self.missing: list[str] = []  # functions asked to be traced that no longer exist

    def event(self, kind: str, name: str, depth: int) -> None:
        s = proc_status()
        rec = {"t": time.monotonic(), "kind": kind, "name": name, "depth": depth}
        rec |= {"rss": s.get("VmRSS"), "hwm": s.get("VmHWM")}
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def span(self, name: str, fn, *args, **kwargs):
        depth = len(self.stack)
        self.stack.append(name)
        self.event("enter", name, depth)
        try:
            return fn(*args, **kwargs)
        finally:
            self.stack.pop()
            self.event("exit", name, depth)

    def wrap(self, owner, attr: str, name, *, top_only: bool = False) -> None:
        """Trace calls of `owner.attr`. `name` is a string or a function of the call's
        arguments; `top_only` traces only calls made directly under the outermost span (polars
        calls its own `collect` inside many methods)."""
        original = getattr(owner, attr, None)
        if original is None:  # the gate was refactored: trace less rather than fail the bench
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{attr}")
            return

        @functools.wraps(original)
        def traced(*args, **kwargs):
            if top_only and len(self.stack) != 1:
                return original(*args, **kwargs)
            label = name(*args, **kwargs) if callable(name) else name
            return self.span(label, original, *args, **kwargs)

        setattr(owner, attr, traced)


# --- parent side -----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    depth: int
    start: float
    end: float | None  # None: never left (the step was killed or crashed inside it)
    rss_start: int | None
    rss_end: int | None
    rss_peak: int = 0  # highest RSS sampled while inside the phase

    def seconds(self, stop: float) -> float:
        return (self.end if self.end is not None else stop) - self.start


@dataclass
class StepRun:
    step: str
    returncode: int
    killed_at_cap: bool
    wall_seconds: float  # process start to exit, imports included
    peak_rss: int  # ru_maxrss of this child (bytes), or the highest sample when killed
    sampled_peak_rss: int
    cpu_seconds: float  # user + system time of the child (less sensitive to a busy machine)
    load_before: float  # 1-minute load average when the step started (2 = both cores busy)
    load_after: float
    ended_at: float  # time.monotonic() when the child was reaped (ends unfinished phases)
    result: dict | None  # what the step wrote, None if it died first
    phases: list[Phase] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None


def run_step(
    step: str,
    args: dict,
    workdir: Path,
    *,
    cap_bytes: int,
    interval: float = 0.1,
    heartbeat: float = 30.0,
    log=print,
) -> StepRun:
    workdir.mkdir(parents=True, exist_ok=True)
    events = workdir / f"{step}.events.jsonl"
    result_path = workdir / f"{step}.result.json"
    stderr_path = workdir / f"{step}.stderr"
    for p in (events, result_path):
        p.unlink(missing_ok=True)
    args = {**args, "events": str(events), "result": str(result_path)}
    cmd = [sys.executable, "-m", "bench.steps", step, json.dumps(args)]
    samples: list[tuple[float, int]] = []
    killed = False
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    next_beat = t0 + heartbeat
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            rss = proc_status(proc.pid).get("VmRSS")
            if rss is not None:
                samples.append((now, rss))
                if rss > cap_bytes and not killed:
                    log(
                        f"  {step}: RSS {rss / GIB:.1f} GiB passed the cap "
                        f"{cap_bytes / GIB:.1f} GiB — killing it"
                    )
                    os.kill(proc.pid, signal.SIGKILL)
                    killed = True
            if now >= next_beat:
                log(
                    f"  {step}: {now - t0:,.0f} s, RSS {(rss or 0) / GIB:.1f} GiB, "
                    f"in {_current_phase(events)}"
                )
                next_beat = now + heartbeat
            time.sleep(interval)
    proc.returncode = _returncode(status)  # reaped by wait4: tell Popen
    wall = time.monotonic() - t0
    sampled = max((r for _, r in samples), default=0)
    peak = usage.ru_maxrss * 1024  # Linux reports kilobytes
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    phases = _phases(events, samples, t0 + wall)
    tail = stderr_path.read_text(errors="replace")[-4000:]
    return StepRun(
        step=step,
        returncode=proc.returncode,
        killed_at_cap=killed,
        wall_seconds=wall,
        peak_rss=max(peak, sampled),
        sampled_peak_rss=sampled,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        ended_at=t0 + wall,
        result=result,
        phases=phases,
        stderr_tail=tail,
    )


def _returncode(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _read_events(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by SIGKILL
            break
    return out


def _current_phase(path: Path) -> str:
    stack: list[str] = []
    for e in _read_events(path):
        if e["kind"] == "enter":
            stack.append(e["name"])
        elif stack:
            stack.pop()
    return " > ".join(stack) or "(start-up)"


def _phases(path: Path, samples: list[tuple[float, int]], stop: float) -> list[Phase]:
    phases: list[Phase] = []
    open_: list[Phase] = []
    for e in _read_events(path):
        if e["kind"] == "enter":
            p = Phase(e["name"], e["depth"], e["t"], None, e["rss"], None)
            phases.append(p)
            open_.append(p)
        elif open_:
            p = open_.pop()
            p.end, p.rss_end = e["t"], e["rss"]
    for p in phases:
        end = p.end if p.end is not None else stop
        inside = [r for t, r in samples if p.start <= t <= end]
        p.rss_peak = max(inside + [p.rss_start or 0, p.rss_end or 0])
    return phases
