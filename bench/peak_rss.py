"""Train one run in a fresh process and print its peak resident memory (used by bench.py).

Usage: ``python bench/peak_rss.py RUN_CONFIG.json OUT_DIR`` -> one JSON line:
``{"peak_rss": bytes, "seconds": s, "samples_per_s": n, "streaming": bool, "buffer_events": n}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

import physnn

torch.set_num_threads(1)


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    start = time.perf_counter()
    result = physnn.train(config, out=sys.argv[2], overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    info = torch.load(os.path.join(sys.argv[2], "last.pt"), map_location="cpu", weights_only=True)["data_info"]
    print(json.dumps({"peak_rss": peak_rss(), "seconds": seconds, "samples_per_s": result.history[-1]["samples_per_s"],
                      "streaming": bool(info.get("streaming")), "buffer_events": info.get("buffer_events"),
                      "bytes_per_event": info.get("bytes_per_event"), "split": info.get("split")}))


def peak_rss() -> int:
    """The high-water mark of this process's resident memory, in bytes.

    Linux: ``VmHWM`` of this address space. (``getrusage`` would also count the parent's memory image
    that this process had between ``fork`` and ``exec``: the kernel carries it into ``ru_maxrss``.)
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


if __name__ == "__main__":
    main()
