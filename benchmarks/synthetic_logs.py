"""Generated log systems with known templates: an extra held-out check for log mining.

Four made-up systems in styles unlike the Loghub eight (a logfmt sidecar, a batch
scheduler, a storage driver, package servicing). Every line comes from a template whose
variables are drawn at random; many variables take only two or three values, some
quantities carry an optional unit and conversion, some values are quoted phrases of
varying length, and a few are hard on purpose (capitalised client names, UPPER_CASE error
names as values). The truth template is the format with one ``<*>`` per variable, following
the Loghub corrected-template convention (values in ``key=value`` positions, ids, names and
quantities are variables; event words and state constants are not).

These were written alongside the miner's rules, so they check that the rules hold on
unseen text rather than prove generalisation; they are reported apart from Loghub.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Gen = Callable[[random.Random], str]
_SLOT = re.compile(r"\{(\w+)\}")


def _few(*values: str) -> Gen:
    return lambda rng: rng.choice(values)


def _int(lo: int, hi: int) -> Gen:
    return lambda rng: str(rng.randint(lo, hi))


def _quantity(rng: random.Random) -> str:
    n = rng.choice([0, rng.randint(1, 900), rng.randint(1024, 9_000_000)])
    if n >= 1024:
        return (
            f"{n} bytes ({n / 1024:.2f} KB)" if n < 1 << 20 else f"{n} bytes ({n / 2**20:.2f} MB)"
        )
    return f"{n} bytes"


def _duration(rng: random.Random) -> str:
    return rng.choice(
        [
            "<1 sec",
            f"{rng.randint(1, 59)} sec",
            f"00:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            f"{rng.randint(1, 999)} ms",
        ]
    )


GENERATORS: dict[str, Gen] = {
    "n": _int(0, 99_999),
    "small": _int(0, 9),
    "ms": lambda rng: f"{rng.randint(1, 5000)}ms",
    "hex": lambda rng: f"0x{rng.getrandbits(32):08x}",
    "ip": lambda rng: f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    "path": lambda rng: f"/api/v{rng.randint(1, 3)}/{rng.choice(['orders', 'users', 'carts'])}",
    "host": lambda rng: rng.choice(
        [f"node-{rng.choice('ABCD')}{rng.randint(1, 40)}", f"gw{rng.randint(1, 9)}"]
    ),
    "svc": _few("cart-api", "billing"),
    "code": _few("503", "504"),
    "bool": _few("true", "false"),
    "cluster": _few("east", "west"),
    "reason": _few("expired", "unknown_ca"),
    "source": _few("file", "xds", "env"),
    "method": _few("GET", "POST"),
    "job": lambda rng: f"etl-{rng.randint(1, 400)}",
    "pool": _few("gold", "silver"),
    "why": _few("oom", "preempted", "timeout"),
    "owner": lambda rng: rng.choice(["null", f"Owner{{node-{rng.randint(1, 9)}}}"]),
    "client": _few("Airflow", "Cron"),
    "dur": _duration,
    "qty": _quantity,
    "nvme": _few("nvme0", "nvme1"),
    "disk": _few("sda", "sdb", "dm-0"),
    "func": _few("xfs_trans_read_buf", "xfs_imap_to_bp"),
    "fw": _few("iwlwifi-8000C.ucode", "rtl_nic.fw"),
    "md": _few("md0", "md1"),
    "pkg": _few("Core~amd64~en-US~~10.0.1", "Extras~arm64~~~2.1.0"),
    "state": _few("Staged", "Installed", "Absent"),
    "file": _few("apply.cpp", "stage_mgr.cpp"),
    "winpath": lambda rng: f"C:\\Windows\\servicing\\stack{rng.randint(1, 3)}\\core.dll",
    "ver": lambda rng: f"{rng.randint(6, 10)}.{rng.randint(0, 3)}.{rng.randint(1000, 9999)}",
    "manifest": _few("Vendor-Stack.Core.Manifest", "Vendor-Stack.Extras.Manifest"),
    "errname": _few("E_INVALID_PACKAGE", "E_NOT_FOUND"),
    "label": _few('"Cache Warmer"', '"Reaper"', '"Nightly Batch Run"'),
}

SYSTEMS: dict[str, list[str]] = {
    "Sidecar (logfmt)": [
        "level=info msg=upstream_reset upstream={svc} code={code} retry={bool} dur={ms}",
        "level=warn msg=circuit_open upstream={svc} failures={n} window={ms}",
        "level=info msg=route_added route={path} cluster={cluster}",
        "level=error msg=tls_failed peer={ip} reason={reason}",
        "level=info msg=config_reloaded version={n} source={source}",
        "level=debug msg=request_done method={method} status={code} bytes={n} took={ms}",
        "level=info msg=task_started task={label} lane=blue",
    ],
    "Scheduler": [
        "Job {n} ({job}) moved from pool {pool} to pool {pool}",
        "Job {n} finished with exit code {small} after {dur}",
        "Worker {host} heartbeat late by {n} ms",
        "Job {n} entered state PENDING",
        "Job {n} entered state RUNNING",
        "Job {n} entered state DONE",
        "Retrying job {n} on {host}: reason={why}",
        "Lease owner={owner} for shard {n}",
        "Client {client} submitted {n} tasks",
    ],
    "Storage driver": [
        "{nvme}: I/O {n} QID {small} timeout, aborting",
        "{nvme}: temperature {n} C above threshold {n} C",
        'xfs ({disk}): metadata I/O error in "{func}" at daddr {hex} len {small} error {small}',
        "loaded firmware file [{fw}] rev {n}",
        "md/raid:{md}: read error corrected ({n} sectors at {n} on {disk})",
        "flushed {qty} to {disk} in {n} ms",
        "sent {qty}, received {qty}, lifetime {dur}",
    ],
    "Package servicing": [
        "Resolving package {pkg} for session {n}_{n}, state: {state}",
        "Apply phase [{file}] returned {hex}",
        "Client {client} opened session {n}_{n}",
        "Loaded servicing stack v{ver} with core {winpath}",
        "Reading manifest {manifest} for {pkg}",
        "Failed to open package {pkg}. [HRESULT = {hex} - {errname}]",
    ],
}


def truth_template(fmt: str) -> str:
    return _SLOT.sub("<*>", fmt)


def generate(system: str, lines: int = 2000, seed: int = 7) -> tuple[list[str], list[str]]:
    """``lines`` messages of ``system`` and the true template of each (deterministic)."""
    rng = random.Random(f"{seed}:{system}")
    formats = SYSTEMS[system]
    weights = [1 / (rank + 1) for rank in range(len(formats))]  # a few frequent events
    rng.shuffle(weights)
    contents, truth = [], []
    for fmt in rng.choices(formats, weights=weights, k=lines):
        contents.append(_SLOT.sub(lambda m: GENERATORS[m.group(1)](rng), fmt))
        truth.append(truth_template(fmt))
    return contents, truth
