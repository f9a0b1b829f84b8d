"""Load without loss: many tablets submitting ratings at once, every acknowledgement recorded.

Run as a process of its own (`python -m bench.lossless PLAN OUT`, started by bench/run.py): it
reads a plan (targets, cookies, the slots each simulated tablet submits, in order), drives the
app servers from threads for a bounded time and a bounded number of requests, and writes every
submission with its fate. Each submission has its own idempotency key and its own slot
(session, scale, rater). A share of acknowledged submissions is sent again with the same key (a
double tap), and a timeout or a connection error is retried with the same key until it is
acknowledged or the grace time is over. This module imports no Django: the database side of the
check is bench/data.py, and `reconcile` below compares the two.
"""

import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .stats import percentile
from .web import loopback

# ---------------------------------------------------------------------------------------------
# Reconciliation (pure)


@dataclass(frozen=True)
class StoredRating:
    key: str
    slot: tuple  # (session id, scale, rater, rater label)
    items: tuple[str, ...]  # one decimal each, e.g. "7.5"


@dataclass(frozen=True)
class Expected:
    slot: tuple
    items: tuple[str, ...]


@dataclass
class Reconciliation:
    acknowledged: int
    stored: int
    lost: list[str] = field(default_factory=list)  # acknowledged, not stored
    duplicated: list[str] = field(default_factory=list)  # a key stored more than once
    duplicated_slots: list[tuple] = field(default_factory=list)  # a slot stored more than once
    extra: list[str] = field(default_factory=list)  # stored, never acknowledged
    in_doubt_stored: list[str] = field(default_factory=list)  # extra, sent but the ack never came
    unexpected: list[str] = field(default_factory=list)  # extra, never sent at all
    mismatched: list[str] = field(default_factory=list)  # stored with other content than sent

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.duplicated or self.duplicated_slots or self.unexpected)
            and not self.mismatched
        )

    @property
    def exact(self) -> bool:
        """Stored equals acknowledged, nothing in doubt either."""
        return self.ok and not self.extra

    def summary(self) -> dict:
        return {
            "acknowledged": self.acknowledged,
            "stored": self.stored,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "duplicated_slots": len(self.duplicated_slots),
            "extra": len(self.extra),
            "in_doubt_stored": len(self.in_doubt_stored),
            "unexpected": len(self.unexpected),
            "mismatched": len(self.mismatched),
            "ok": self.ok,
            "exact": self.exact,
            "examples": {
                name: [str(x) for x in getattr(self, name)[:5]]
                for name in ("lost", "duplicated", "unexpected", "mismatched")
                if getattr(self, name)
            },
        }


def reconcile(
    acknowledged: Mapping[str, Expected],
    stored: Sequence[StoredRating],
    attempted: Iterable[str] = (),
) -> Reconciliation:
    """Compare what the app acknowledged with what the database holds, key by key.

    `attempted` are the keys sent without an acknowledgement (the client gave up, or the run
    ended): such a rating may or may not be stored, and either is correct.
    """
    key_counts = Counter(row.key for row in stored)
    slot_counts = Counter(row.slot for row in stored)
    by_key = {row.key: row for row in stored}
    sent_unacked = set(attempted) - set(acknowledged)
    extra = sorted(key for key in key_counts if key not in acknowledged)
    result = Reconciliation(
        acknowledged=len(acknowledged),
        stored=len(stored),
        lost=sorted(key for key in acknowledged if key not in key_counts),
        duplicated=sorted(key for key, n in key_counts.items() if n > 1),
        duplicated_slots=sorted((slot for slot, n in slot_counts.items() if n > 1), key=str),
        extra=extra,
        in_doubt_stored=[key for key in extra if key in sent_unacked],
        unexpected=[key for key in extra if key not in sent_unacked],
    )
    for key, expected in acknowledged.items():
        row = by_key.get(key)
        if row is not None and (row.slot != tuple(expected.slot) or row.items != expected.items):
            result.mismatched.append(key)
    result.mismatched.sort()
    return result


# ---------------------------------------------------------------------------------------------
# The driver (a process of its own)


@dataclass
class Submission:
    key: str
    session: int
    scale: str
    items: list[str]
    target: str
    acked: bool = False
    status: int | None = None  # the status of the acknowledging answer (201 new, 200 replay)
    attempts: int = 0
    latency_ms: float | None = None  # of the acknowledged attempt
    rejected: str = ""  # a 4xx or other answer that no retry can change
    replays: list[int] = field(default_factory=list)  # statuses of the deliberate re-sends


class Budget:
    """At most `limit` requests in the whole run, shared by every thread."""

    def __init__(self, limit: int):
        self.left = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    transport_errors: Counter = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)

    def status(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    def error(self, kind: str, at: float) -> None:
        with self.lock:
            self.transport_errors[kind] += 1
            self.error_times.append(at)


def _post(target: str, path: str, body: bytes, headers: dict, timeout: float):
    host, port = loopback(target)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _stored(status: int, body: bytes) -> bool:
    if status not in (200, 201):
        return False
    try:
        return json.loads(body).get("status") == "stored"
    except (ValueError, AttributeError):
        return False


class Driver:
    def __init__(self, plan: dict):
        self.plan = plan
        self.targets = plan["targets"]
        for target in self.targets:
            loopback(target)
        self.timeout = float(plan.get("request_timeout_s", 30))
        self.budget = Budget(int(plan.get("max_requests", 100_000)))
        self.tally = Tally()
        self.submissions: list[list[Submission]] = [[] for _ in plan["workers"]]
        self.headers = {
            "Cookie": plan["cookie"],
            "X-CSRFToken": plan["csrf"],
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }

    def _send(self, target: str, slot: dict) -> tuple[int | None, bytes, float]:
        """One attempt: (status or None for a transport error, body, seconds taken)."""
        began = time.monotonic()
        body = urllib.parse.urlencode({**slot["form"], "idempotency_key": slot["key"]}).encode()
        try:
            status, answer = _post(target, slot["path"], body, self.headers, self.timeout)
        except (OSError, http.client.HTTPException) as error:
            self.tally.error(type(error).__name__, began - self.started)
            return None, b"", time.monotonic() - began
        self.tally.status(status)
        return status, answer, time.monotonic() - began

    def _until_answered(self, target: str, slot: dict, record: Submission | None, hard_deadline):
        """Send with the same key until the app answers something other than 5xx or an error."""
        pause = 0.1
        while True:
            if not self.budget.take():
                return None, b"", 0.0
            status, body, took = self._send(target, slot)
            if record is not None:
                record.attempts += 1
            if status is not None and status < 500:
                return status, body, took
            if time.monotonic() + pause >= hard_deadline:
                return None, b"", 0.0
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def worker(self, index: int, slots: list[dict], deadline: float, hard_deadline: float):
        rng = random.Random(f"{self.plan.get('seed', 1)}-{index}")  # noqa: S311 -- not security
        target = self.targets[index % len(self.targets)]
        done = self.submissions[index]
        for slot in slots:
            if time.monotonic() >= deadline:
                break
            record = Submission(
                key=slot["key"],
                session=slot["session"],
                scale=slot["scale"],
                items=list(slot["items"]),
                target=target,
            )
            done.append(record)
            status, body, took = self._until_answered(target, slot, record, hard_deadline)
            if status is None:
                if record.attempts == 0:
                    done.pop()  # never sent: the budget ran out first
                break  # out of time or budget: a sent one stays in doubt
            if not _stored(status, body):
                record.rejected = f"{status} {body[:200].decode(errors='replace')}"
                continue
            record.acked, record.status, record.latency_ms = True, status, took * 1000
            if rng.random() < self.plan.get("retry_fraction", 0.1):
                again, body, _took = self._until_answered(target, slot, None, hard_deadline)
                if again is not None:
                    record.replays.append(again if _stored(again, body) else -again)

    def run(self) -> dict:
        duration = float(self.plan["duration_s"])
        grace = float(self.plan.get("grace_s", 30))
        self.started = time.monotonic()
        deadline = self.started + duration
        hard_deadline = deadline + grace
        threads = [
            threading.Thread(target=self.worker, args=(i, slots, deadline, hard_deadline))
            for i, slots in enumerate(self.plan["workers"])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, hard_deadline - time.monotonic() + self.timeout + 5))
        elapsed = time.monotonic() - self.started
        return self.report(elapsed, sum(t.is_alive() for t in threads))

    def report(self, elapsed: float, stuck_threads: int) -> dict:
        records = [record for worker in self.submissions for record in worker]
        acked = [r for r in records if r.acked]
        latencies = [r.latency_ms for r in acked if r.latency_ms is not None]
        replays = [status for r in records for status in r.replays]
        errors = self.tally.error_times
        return {
            "elapsed_s": round(elapsed, 2),
            "threads": len(self.submissions),
            "stuck_threads": stuck_threads,
            "targets": self.targets,
            "requests": sum(self.tally.statuses.values())
            + sum(self.tally.transport_errors.values()),
            "statuses": {str(k): v for k, v in sorted(self.tally.statuses.items())},
            "server_errors": sum(v for k, v in self.tally.statuses.items() if k >= 500),
            "transport_errors": dict(self.tally.transport_errors),
            "error_window_s": [round(min(errors), 2), round(max(errors), 2)] if errors else None,
            "sent": len(records),
            "acknowledged": len(acked),
            "acknowledged_new": sum(r.status == 201 for r in acked),
            "acknowledged_as_replay": sum(r.status == 200 for r in acked),
            "retried": sum(r.attempts > 1 for r in records),
            "rejected": sum(bool(r.rejected) for r in records),
            "rejections": [r.rejected for r in records if r.rejected][:5],
            "in_doubt": sum(not r.acked and not r.rejected for r in records),
            "replays_sent": len(replays),
            "replays_answered_stored_200": sum(s == 200 for s in replays),
            "replays_other": sum(s != 200 for s in replays),
            "acked_per_s": round(len(acked) / elapsed, 1) if elapsed else 0.0,
            "latency_ms": {
                "p50": round(percentile(latencies, 50), 1),
                "p95": round(percentile(latencies, 95), 1),
                "max": round(max(latencies), 1),
            }
            if latencies
            else None,
            "submissions": [asdict(r) for r in records],
        }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.lossless PLAN.json OUT.json", file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_text())
    report = Driver(plan).run()
    Path(argv[1]).write_text(json.dumps(report))
    print(
        f"lossless driver: {report['acknowledged']} acknowledged of {report['sent']} sent, "
        f"{report['requests']} requests in {report['elapsed_s']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
