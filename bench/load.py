"""wrk, the load tool: one process of its own per phase, Lua scripts in bench/lua/.

wrk is C with an event loop, so on a 2-core machine the load generator takes little of the CPU
the app server needs; its latencies are per request, its percentiles exact to the microsecond.
"""

import math
import os
import shutil
import subprocess
from pathlib import Path

from .stats import Measurement, parse_wrk
from .web import loopback

LUA = Path(__file__).resolve().parent / "lua"


def ensure_wrk(install: bool = True) -> str:
    """The wrk binary; Debian's package is installed when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if not install or os.geteuid() != 0:
        raise RuntimeError("wrk is missing: apt-get install wrk (Debian's package)")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(command, check=True, env=env)  # noqa: S603 -- fixed apt-get commands
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get did not install wrk")
    return found


def wrk_version() -> str:
    done = subprocess.run(
        ["wrk", "--version"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout or done.stderr).splitlines()[0].strip()


def wrk_command(
    url: str,
    *,
    script: str,
    duration_s: int,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout_s: int = 60,
) -> list[str]:
    loopback(url)
    command = [
        "wrk",
        "--threads",
        str(threads),
        "--connections",
        str(connections),
        "--duration",
        f"{duration_s}s",
        "--timeout",
        f"{timeout_s}s",
        "--script",
        str(LUA / f"{script}.lua"),
    ]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    return [*command, url, "--", *args]


def run_wrk(url: str, **kwargs) -> dict:
    command = wrk_command(url, **kwargs)
    done = subprocess.run(  # noqa: S603 -- wrk with our own arguments, loopback URL only
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=kwargs["duration_s"] + kwargs.get("timeout_s", 60) + 30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-1000:]}")
    return parse_wrk(done.stdout)


def phase_duration(
    warm_requests: int, warm_s: float, duration_s: int, min_requests: int, max_duration_s: int
) -> int:
    """Seconds for a measured phase: `duration_s`, or longer for a slow endpoint (judged by its
    warm-up's rate) so that about `min_requests` complete, capped at `max_duration_s`."""
    if warm_requests <= 0 or warm_s <= 0:
        return max(duration_s, max_duration_s)
    needed = math.ceil(min_requests / (warm_requests / warm_s))
    return max(duration_s, min(max_duration_s, needed))


def measure(
    *,
    name: str,
    label: str,
    base_url: str,
    path: str,
    headers: dict[str, str],
    warmup_s: int,
    duration_s: int,
    connections: int,
    expected: int = 200,
    posts: tuple[Path, Path] | None = None,
    target_p95_ratio: float | None = None,
    min_requests: int = 40,
    max_duration_s: int = 45,
) -> tuple[Measurement, dict]:
    """A warm-up (discarded) and then the measured phase, at the same concurrency.

    A slow endpoint's phase is longer than `duration_s`, so that its p95 rests on about
    `min_requests` samples, but never longer than `max_duration_s`.

    For a GET the URL is fixed; `posts` (warm-up file, measured file) makes each request POST
    the next line of a file instead (bench/lua/post.lua).
    """
    common = {"connections": connections, "headers": headers}
    if posts is None:
        url, script = base_url + path, "get"
        warm_args = measured_args = (str(expected),)
    else:
        url, script = base_url + "/", "post"
        warm_args = (str(expected), str(posts[0]), "1")
        measured_args = (str(expected), str(posts[1]), "1")
    if warmup_s > 0:
        warm = run_wrk(url, script=script, duration_s=warmup_s, args=warm_args, **common)
        duration_s = phase_duration(
            warm["requests"], warm["duration_s"], duration_s, min_requests, max_duration_s
        )
    raw = run_wrk(url, script=script, duration_s=duration_s, args=measured_args, **common)
    note = []
    if raw["wrapped"]:
        note.append(f"ran out of slots {raw['wrapped']}× (replays)")
    if raw["requests"] == 0:
        raise RuntimeError(f"{label}: wrk completed no request in {duration_s} s")
    measurement = Measurement(
        name=name,
        label=label,
        method="POST" if posts else "GET",
        path=path,
        requests=raw["requests"],
        duration_s=round(raw["duration_s"], 3),
        p50_ms=raw["p50_ms"],
        p95_ms=raw["p95_ms"],
        p99_ms=raw["p99_ms"],
        mean_ms=raw["mean_ms"],
        max_ms=raw["max_ms"],
        errors=raw["transport_errors"] + raw["status_errors"],
        unexpected=raw["unexpected"],
        target_p95_ratio=target_p95_ratio,
        note="; ".join(note),
    )
    return measurement, raw
