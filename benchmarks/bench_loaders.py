"""Loading users' images: start-up to the first batch, peak memory and images/s of each folder loader, with 0, 1 and
2 DataLoader workers, on the image sets of benchmarks/make_image_sets.py.

    python benchmarks/make_image_sets.py                       # once: the sets, in /tmp/gan_image_sets
    git worktree add --detach /tmp/old 320ace0                  # once: the loaders before per-example reading
    python benchmarks/bench_loaders.py --json benchmarks/results/loaders-cpu.json
    python benchmarks/bench_loaders.py --table benchmarks/results/loaders-cpu.json     # the Markdown tables

Loaders (``--loaders``): ``old_folder`` (``data=image_folder`` at 320ace0, the code before per-example reading:
``--old-src``), ``folder`` (``data=image_folder`` on the JPEG folder), ``dt_zip`` (the same on a zip of the
folder written as StyleGAN2-ADA's dataset_tool.py writes one: Pillow's PNGs at ``compress_level=0``, rows filtered),
``zip`` (the same on the zip prepare_data.py makes: unfiltered PNGs, read with no decoding),
``streaming`` (``data=streaming`` on LitData chunks, where the package and the chunks exist), ``old_aligned`` and
``aligned`` (``data=aligned_folder`` on the edges|image pairs, 286 px halves, 256 px crops).

Each case runs in a fresh Python process (``--case``) that builds the data module from the package's own
``conf/data/*.yaml`` (the old code's for the old loaders), so the figures are those of a training run's loader:
- ``startup_s``: from constructing the data module to the first batch in hand (listing, checks, reading into
  memory where a loader does that, starting the workers, the first batch);
- ``images_per_s``: batches ``--batches`` after ``--warmup`` more (the loader alone: nothing else runs in the
  process), in examples per second (pairs per second for the aligned loaders);
- memory, polled every 50 ms by this process from /proc: ``peak_rss_mb``, the largest sum of the resident set
  sizes of the case's process and its workers (shared pages count once per process: an upper bound), and
  ``peak_main_rss_mb``, the process alone; ``pss_mb``, the proportional set size of the same processes (shared
  pages split between them: what they really take) read once after the timed batches, with the loader still
  running; ``base_rss_mb``: the process after its imports, before the data module.
- ``others_cores``: the CPU time that processes other than the case's used during it, in cores (from /proc/stat):
  near 0 on a quiet machine; ``loadavg``: the 1-minute load average before and after the case.

The case's process runs torch on ``--threads`` threads (1: on 2 cores, 2 threads in the main process spin after
each batch's conversion and take a core from the workers). Every file of a case's set is read right before the
case, so that it finds its data in the page cache (``warm_s``; this machine pages out file data left unread for
about a minute); ``--cold`` empties the caches before each case instead, for cold start-ups. Results merge into the JSON by case id, so a part can be
measured again (``--only REGEX``) on a quieter hour; ``--variant NAME`` with ``--new-src`` measures another
version of the package beside this one (case ids end in ``@NAME``). ``--profile PATH...`` times each step of one
worker's reading instead.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
LOADERS = ("old_folder", "folder", "dt_zip", "zip", "streaming", "old_aligned", "aligned")
TITLES = {
    "old_folder": "image_folder before (320ace0), JPEG folder",
    "folder": "image_folder, JPEG folder",
    "dt_zip": "image_folder, zip as dataset_tool writes it",
    "zip": "image_folder, prepared zip",
    "streaming": "streaming, LitData chunks",
    "old_aligned": "aligned_folder before (320ace0)",
    "aligned": "aligned_folder",
}


def label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


# --- the machine ---------------------------------------------------------------------------------------------------
def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def busy_jiffies() -> int:
    """All CPUs' non-idle time since boot, in clock ticks (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # minus idle and iowait


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    info = {"nproc": os.cpu_count(), "cpu_model": model.group(1).strip() if model else platform.processor(),
            "mem_total_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
            "python": platform.python_version(), "kernel": platform.release()}
    try:
        import PIL
        import torch

        info.update(torch=torch.__version__, pillow=PIL.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass
    return info


# --- the cases -------------------------------------------------------------------------------------------------------
def cases(args) -> list[dict]:
    """Every case of the matrix the options ask for, with its id, whether its data exist, and its settings."""
    sets = Path(args.sets)
    out = []

    def add(loader, data, size, count, conf, options, batch):
        for nw in args.workers:
            cid = f"{loader}/{label(count)}/{size}px/w{nw}" + (f"@{args.variant}" if args.variant else "")
            out.append({"id": cid, "loader": loader, "variant": args.variant, "count": count, "size": size, "workers": nw, "conf": conf,
                        "path": str(data), "batch_size": batch, "old": loader.startswith("old_"),
                        "options": {**options, "batch_size": batch, "num_workers": nw, "seed": 0}})

    for loader in args.loaders:
        for count in args.counts:
            if loader in ("old_folder", "folder", "dt_zip", "zip", "streaming"):
                for size in args.sizes:
                    data = {"zip": sets / f"zip-{size}-{label(count)}.zip",
                            "dt_zip": sets / f"dtzip-{size}-{label(count)}.zip",
                            "streaming": sets / f"litdata-{size}-{label(count)}"}.get(
                        loader, sets / f"folder-{size}-{label(count)}")
                    options = {"image_size": size} if loader != "streaming" else {}
                    add(loader, data, size, count, "streaming" if loader == "streaming" else "image_folder",
                        options, args.batch_size)
            else:
                if loader == "old_aligned" and count > args.old_aligned_max:
                    continue  # holds every pair in memory: 0.5 MB a pair at 286 px
                add(loader, sets / f"pairs-286-{label(count)}", 286, count, "aligned_folder",
                    {"load_size": 286, "crop": 256}, args.pair_batch_size)
    if args.only:
        out = [c for c in out if re.search(args.only, c["id"])]
    return out


def available(case: dict, args) -> str | None:
    """Why a case cannot run here (``None``: it can)."""
    if not Path(case["path"]).exists():
        return f"no data at {case['path']} (benchmarks/make_image_sets.py makes it)"
    if case["old"] and not (Path(args.old_src) / "gan_lightning").is_dir():
        return f"no checkout of 320ace0 at {args.old_src} (git worktree add --detach {args.old_src} 320ace0)"
    if case["loader"] == "streaming":
        if not (Path(args.new_src) / "gan_lightning/data/streaming.py").is_file():
            return "data=streaming does not exist in this version"
        try:
            import litdata  # noqa: F401
        except ImportError:
            return "litdata is not installed"
    return None


# --- one case, in its own process -------------------------------------------------------------------------------------
def _rss_mb(pid: int | str = "self") -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def _batches(loader):
    """The loader's batches, epoch after epoch."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise RuntimeError("the loader gave no batch")


def run_case(spec: dict) -> None:
    """Build the case's data module, time its loader, print one JSON line; pause for the PSS reading."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import gan_lightning

    conf_root = Path(spec["conf_root"])
    cfg = OmegaConf.load(conf_root / "conf" / "data" / f"{spec['conf']}.yaml")
    cfg.path = spec["path"]
    for key, value in spec["options"].items():
        cfg[key] = value
    importlib.import_module(cfg._target_.rsplit(".", 1)[0])  # imports are not start-up: a training run has them
    import torch

    torch.set_num_threads(spec["threads"])
    base_rss = _rss_mb()
    start = time.perf_counter()
    dm = instantiate(cfg)
    loader = dm.train_dataloader()
    batches = _batches(loader)
    first = next(batches)
    startup = time.perf_counter() - start
    for _ in range(spec["warmup"]):
        next(batches)
    t0, n = time.perf_counter(), 0
    for _ in range(spec["batches"]):
        batch = next(batches)
        n += len(next(iter(batch.values())))
    elapsed = time.perf_counter() - t0
    keys = {k: list(v.shape) for k, v in first.items()}
    print(json.dumps({"pss_please": True}), flush=True)
    sys.stdin.readline()  # the parent reads the PSS of this process and its workers meanwhile
    # Stop the workers and wait for them, so that their CPU time reaches the parent's accounting.
    batches.close()
    del batches, loader, dm, first, batch
    gc.collect()
    import resource

    print(json.dumps({"startup_s": startup, "images": n, "timed_s": elapsed, "images_per_s": n / elapsed,
                      "base_rss_mb": base_rss, "batch_shapes": keys,
                      "maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "module": gan_lightning.__file__}), flush=True)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split())
        except OSError:
            continue
    return out


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        m = re.search(r"^Pss:\s*(\d+) kB", text, re.M)
        total += int(m.group(1)) if m else 0
    return total / 1024


def warm(paths: list[str]) -> None:
    """Read every file under ``paths`` once, so that the cases find them in the page cache (as a second epoch
    does, and a data set smaller than the machine's memory)."""
    for path in dict.fromkeys(paths):
        root = Path(path)
        for f in [root] if root.is_file() else (q for q in root.rglob("*") if q.is_file()):
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def drop_caches() -> None:
    """Empty the page cache and the dentry and inode caches (root only), for a cold start."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def measure(case: dict, args) -> dict:
    """One run of ``case`` in a fresh process, watched from here."""
    warm_s = None
    if args.cold:
        drop_caches()
    else:
        start = time.time()
        warm([case["path"]])
        warm_s = round(time.time() - start, 2)
    spec = {**case, "warmup": args.warmup, "batches": args.batches, "threads": args.threads,
            "conf_root": str(Path(args.old_src if case["old"] else args.new_src).resolve().parent)}
    env = dict(os.environ)
    src = str(Path(args.old_src if case["old"] else args.new_src).resolve())
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    load_before, busy0, wall0 = loadavg(), busy_jiffies(), time.time()
    self0 = os.times()
    proc = subprocess.Popen([sys.executable, __file__, "--case", json.dumps(spec)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    peak = {"tree": 0.0, "main": 0.0}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                pids = _tree(proc.pid)
                sizes = []
                for p in pids:
                    try:
                        sizes.append(_rss_mb(p))
                    except OSError:
                        pass
                peak["tree"] = max(peak["tree"], sum(sizes))
                peak["main"] = max(peak["main"], sizes[0] if sizes else 0)
            except OSError:
                pass
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result, pss, workers_seen = None, None, None
    try:
        deadline = time.time() + args.timeout
        for line in proc.stdout:
            msg = json.loads(line) if line.startswith("{") else {}
            if msg.get("pss_please"):
                pids = _tree(proc.pid)
                workers_seen = len(pids) - 1
                pss = _pss_mb(pids)
                proc.stdin.write("go\n")
                proc.stdin.flush()
            elif "startup_s" in msg:
                result = msg
            if time.time() > deadline:
                proc.kill()
                break
        proc.wait(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        proc.kill()
    finally:
        stop.set()
        watcher.join()
    wall = time.time() - wall0
    mine = os.times()
    children = (mine.children_user + mine.children_system) - (self0.children_user + self0.children_system)
    me = (mine.user + mine.system) - (self0.user + self0.system)
    others = (busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK") - children - me
    record = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": round(wall, 2),
              "cache": "cold" if args.cold else "warm", "warm_s": warm_s,
              "loadavg_before": load_before[0], "loadavg_after": loadavg()[0],
              "others_cores": round(max(0.0, others) / wall, 3), "peak_rss_mb": round(peak["tree"], 1),
              "peak_main_rss_mb": round(peak["main"], 1), "pss_mb": round(pss, 1) if pss is not None else None,
              "processes": workers_seen + 1 if workers_seen is not None else None}
    if result is None:
        record["error"] = (proc.stderr.read() or "")[-3000:] if proc.stderr else "no result"
        return record
    record.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()})
    return record


def summarise(runs: list[dict]) -> dict:
    """The median of the repeats' timings, the largest memory figures, and every repeat."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return {"error": runs[-1].get("error"), "repeats": runs}
    med = lambda k: round(statistics.median(r[k] for r in good), 3)  # noqa: E731
    top = lambda k: max((r[k] for r in good if r.get(k) is not None), default=None)  # noqa: E731
    return {"startup_s": med("startup_s"), "images_per_s": med("images_per_s"), "peak_rss_mb": top("peak_rss_mb"),
            "peak_main_rss_mb": top("peak_main_rss_mb"), "pss_mb": top("pss_mb"), "base_rss_mb": top("base_rss_mb"),
            "others_cores": top("others_cores"), "loadavg_before": max(r["loadavg_before"] for r in good),
            "cache": good[0]["cache"], "module": good[0]["module"], "batch_shapes": good[0]["batch_shapes"],
            "repeats": runs}


# --- where one worker's time goes ---------------------------------------------------------------------------------------
def profile(path: str, n: int = 2000, repeats: int = 3) -> dict:
    """Microseconds per image of each step of reading ``path`` (a folder or a zip) in one process and one thread:
    the file's bytes, PIL's decode, the mode conversion, PIL -> tensor (a transposing copy), libpng's decode
    (PNGs), the reader as it is (``ImageSource.read``), the per-example machinery (``Items``), and what the
    DataLoader and the training loop do per image (collate, to float). The best of ``repeats``."""
    import io
    import zipfile

    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.data import default_collate
    from torchvision.io import ImageReadMode, decode_png
    from torchvision.transforms.functional import pil_to_tensor

    from gan_lightning.data.convert import to_float
    from gan_lightning.data.folders import SourceImages
    from gan_lightning.data.sources import ImageSource

    torch.set_num_threads(1)
    src = ImageSource(path)
    n = min(n, len(src))
    archive = zipfile.ZipFile(path) if src.is_zip else None

    def file_bytes(i):
        if archive is not None:
            return archive.read(src.names[i])
        with open(src.root / src.names[i], "rb") as f:
            return f.read()

    blobs = [file_bytes(i) for i in range(n)]
    images = []
    for b in blobs:
        im = Image.open(io.BytesIO(b))
        im.load()
        images.append(im)
    size = images[0].size[0]
    items = SourceImages(src, size, 3, None, 0)
    tensors = [src.read(i, 3) for i in range(n)]
    png = blobs[0][:8] == b"\x89PNG\r\n\x1a\n"

    def pil_decode(b):
        im = Image.open(io.BytesIO(b))
        im.load()

    steps = {
        "file bytes (zip member or file)": file_bytes,
        "PIL decode": lambda i: pil_decode(blobs[i]),
        "PIL convert to RGB (a copy when already RGB)": lambda i: images[i].convert("RGB"),
        "PIL -> tensor, transposed (pil_to_tensor + contiguous)": lambda i: pil_to_tensor(images[i]).contiguous(),
        "PIL -> tensor, transposed by numpy": lambda i: torch.from_numpy(
            np.ascontiguousarray(np.asarray(images[i]).transpose(2, 0, 1))),
        "ImageSource.read (as the loader calls it)": lambda i: src.read(i, 3),
        "Items: read + per-example machinery": lambda i: items[(0, i)],
    }
    if png:
        steps["libpng decode (torchvision decode_png)"] = lambda i: decode_png(
            torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8), ImageReadMode.UNCHANGED)
    out = {}
    for name, fn in steps.items():
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for i in range(n):
                fn(i)
            best = min(best, time.perf_counter() - t)
        out[name] = round(best / n * 1e6, 1)
    rows = [{"x": tensors[i], "_bad": torch.tensor(-1)} for i in range(64)]
    contiguous = [{"x": r["x"].contiguous(), "_bad": r["_bad"]} for r in rows]
    for name, batch in (("collate, per image (the read's tensors)", rows),
                        ("collate, per image (contiguous tensors)", contiguous)):
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(50):
                default_collate(batch)
            best = min(best, time.perf_counter() - t)
        out[name] = round(best / 50 / 64 * 1e6, 1)
    x = torch.stack([r["x"].contiguous() for r in rows])
    t = time.perf_counter()
    for _ in range(50):
        to_float(x)
    out["to float in [-1, 1], per image (main process)"] = round((time.perf_counter() - t) / 50 / 64 * 1e6, 1)
    return {"path": path, "images": n, "size": size, "mean_file_kib": round(sum(map(len, blobs)) / n / 1024, 1),
            "us_per_image": out}


# --- tables ----------------------------------------------------------------------------------------------------------
def tables(data: dict) -> str:
    runs = data["runs"]
    lines = []
    m = data.get("machine", {})
    lines.append(f"Machine: {m.get('cpu_model')}, {m.get('nproc')} cores, {m.get('mem_total_gib')} GiB; "
                 f"torch {m.get('torch')}, Pillow {m.get('pillow')}, Python {m.get('python')}.")
    lines.append("")
    lines.append("| loader | images | px | workers | start-up s | images/s | per core | peak RSS MB (main) | "
                 "PSS MB | others' load |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    order = {k: i for i, k in enumerate(LOADERS)}
    for cid, r in sorted(runs.items(), key=lambda kv: (order.get(kv[1]["loader"], 9), kv[1].get("variant", ""),
                                                        kv[1]["size"], kv[1]["count"], kv[1]["workers"])):
        title = TITLES[r["loader"]] + (f" ({r['variant']})" if r.get("variant") else "")
        if "error" in r or "skipped" in r:
            why = r.get("skipped") or "failed: " + str(r.get("error", "")).strip().splitlines()[-1][:120]
            lines.append(f"| {title} | {label(r['count'])} | {r['size']} | {r['workers']} | {why} "
                         "| | | | | |")
            continue
        per_core = r["images_per_s"] / max(1, r["workers"])
        lines.append(f"| {title} | {label(r['count'])} | {r['size']} | {r['workers']} | "
                     f"{r['startup_s']:.2f} | {r['images_per_s']:.0f} | {per_core:.0f} | "
                     f"{r['peak_rss_mb']:.0f} ({r['peak_main_rss_mb']:.0f}) | {r['pss_mb']:.0f} | "
                     f"{r['others_cores']:.2f} (load {r['loadavg_before']:.2f}) |")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--sets", default="/tmp/gan_image_sets", help="benchmarks/make_image_sets.py's --out")
    p.add_argument("--old-src", default="/tmp/old/src", help="the src/ of a checkout of 320ace0")
    p.add_argument("--new-src", default=str(ROOT / "src"), help="the src/ of the version measured as new (this one)")
    p.add_argument("--variant", default="", help="a name for what --new-src holds, added to the case ids (@NAME)")
    p.add_argument("--loaders", nargs="*", default=list(LOADERS), choices=LOADERS)
    p.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256])
    p.add_argument("--counts", type=int, nargs="*", default=[5000, 50000])
    p.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--pair-batch-size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=8, help="batches after the first, untimed")
    p.add_argument("--batches", type=int, default=40, help="timed batches")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--old-aligned-max", type=int, default=5000,
                   help="the old aligned loader holds every pair in memory: larger counts are not run")
    p.add_argument("--only", help="a regular expression on case ids (loader/count/size/wN)")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the case's process (its workers always have 1): with 2 on 2 cores, the "
                        "main process's idle threads spin and take a core from the workers")
    p.add_argument("--json", help="merge the results into this file")
    p.add_argument("--table", help="print the Markdown table of a results file and stop")
    p.add_argument("--dry-run", action="store_true", help="list the cases")
    p.add_argument("--cold", action="store_true",
                   help="empty the page cache before each case (root only; use with --variant cold); by default "
                        "every file is read once before the cases, so they find it cached")
    p.add_argument("--profile", nargs="*", metavar="PATH",
                   help="time each step of reading these folders or zips in one process (into the JSON's "
                        "\"profile\") and stop")
    args = p.parse_args()
    if args.case:
        run_case(json.loads(args.case))
        return
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return
    data = {"runs": {}}
    if args.json and Path(args.json).is_file():
        data = json.loads(Path(args.json).read_text())
    data["machine"] = machine()
    if args.profile is not None:
        for path in args.profile:
            before = loadavg()[0]
            result = {**profile(path), "loadavg_before": before, "loadavg_after": loadavg()[0],
                      "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            name = Path(path).name + (f"@{args.variant}" if args.variant else "")
            data.setdefault("profile", {})[name] = result
            print(json.dumps(result, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=1) + "\n")
        return
    todo = cases(args)
    data["settings"] = {"sets": args.sets, "warmup": args.warmup, "batches": args.batches, "threads": args.threads,
                        "batch_size": args.batch_size, "pair_batch_size": args.pair_batch_size,
                        "repeats": args.repeats, "command": " ".join(sys.argv)}
    print(f"{len(todo)} cases; load average {loadavg()}", flush=True)
    for case in todo:
        why = available(case, args)
        if args.dry_run:
            print(case["id"], why or "")
            continue
        entry = {k: case[k] for k in ("loader", "variant", "count", "size", "workers", "path", "batch_size")}
        if why:
            data["runs"][case["id"]] = {**entry, "skipped": why}
            print(f"{case['id']}: skipped ({why})", flush=True)
        else:
            runs = [measure(case, args) for _ in range(args.repeats)]
            data["runs"][case["id"]] = {**entry, **summarise(runs)}
            r = data["runs"][case["id"]]
            if "error" in r:
                print(f"{case['id']}: FAILED {str(r['error']).strip().splitlines()[-1:]}", flush=True)
            else:
                print(f"{case['id']}: start-up {r['startup_s']:.2f} s, {r['images_per_s']:.0f} images/s, peak RSS "
                      f"{r['peak_rss_mb']:.0f} MB (main {r['peak_main_rss_mb']:.0f}), PSS {r['pss_mb']:.0f} MB, "
                      f"others {r['others_cores']:.2f} cores, load {r['loadavg_before']:.2f}", flush=True)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(data, indent=1) + "\n")
    print(f"load average at the end {loadavg()}")


if __name__ == "__main__":
    main()
