"""A wall-clock stack sampler in the process itself, writing folded stacks in
py-spy's frame syntax ("func (path/file.py:line)", root first, one
"stack count" line each). Debian 12 packages no py-spy, and its austin
(1.0.1) cannot read Python 3.11, so this stands in for them: every
millisecond it reads sys._current_frames() and counts the stack of every
thread but its own and the exporter's.
"""

import collections
import sys
import threading
import time

_counts = collections.Counter()
_stop = threading.Event()
_thread = None
_file = None


def _stack(frame):
    out = []
    while frame is not None:
        code = frame.f_code
        out.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
        frame = frame.f_back
    return ";".join(reversed(out))


def _run():
    me = threading.get_ident()
    while not _stop.is_set():
        skip = {me} | {t.ident for t in threading.enumerate() if t.name == "otlp-exporter"}
        for ident, frame in sys._current_frames().items():
            if ident not in skip:
                _counts[_stack(frame)] += 1
        time.sleep(0.001)


def start(path):
    global _thread, _file
    if not path:
        return
    _file = path
    _thread = threading.Thread(target=_run, name="sampler", daemon=True)
    _thread.start()


def stop():
    if _thread is None:
        return
    _stop.set()
    _thread.join()
    with open(_file, "w") as f:
        for stack, n in sorted(_counts.items()):
            f.write(f"{stack} {n}\n")
