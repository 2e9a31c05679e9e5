"""Runs app.py under a stack sampler and writes folded stacks.

austin 1.0.1 (Debian 12's) cannot read Python 3.11 and py-spy is not
packaged by Debian, so this samples in-process instead: a thread reads
sys._current_frames() every millisecond and writes the main thread's stack
as austin 3 writes collapsed stacks, "P<pid>;T<tid>;<file>:<qualname>:<line>;..."
root first, then the number of samples. The stacks are those of a real run
of Debian's python3 with Debian's python3-yaml, -jinja2, -requests and -jwt.

    python3 sample.py OUT SECONDS
"""

import collections
import os
import runpy
import sys
import threading
import time

APP = os.path.abspath("app.py")


def sampler(main_id, stacks, stop):
    pid = os.getpid()
    while not stop.is_set():
        frame = sys._current_frames().get(main_id)
        parts = []
        while frame is not None:
            code = frame.f_code
            parts.append(f"{code.co_filename}:{code.co_qualname}:{frame.f_lineno}")
            frame = frame.f_back
        # Drop the frames of this script and runpy below app.py, which a
        # profiler attached to "python3 app.py" would not see.
        while parts and not parts[-1].startswith(APP + ":"):
            parts.pop()
        if parts:
            stacks[f"P{pid};T{main_id:x};" + ";".join(reversed(parts))] += 1
        time.sleep(0.001)


def main(out, seconds):
    stacks = collections.Counter()
    stop = threading.Event()
    t = threading.Thread(target=sampler, args=(threading.main_thread().ident, stacks, stop), daemon=True)
    t.start()
    sys.argv = [APP, seconds]
    try:
        runpy.run_path(APP, run_name="__main__")
    finally:
        stop.set()
        t.join()
    with open(out, "w") as f:
        for stack, n in sorted(stacks.items()):
            f.write(f"{stack} {n}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
