"""python-wordfreq: a fuelhost artifact in Python.

Counts the words of its UTF-8 input and returns the most frequent ones as
JSON. It reads the call context from the ledger, logs through the host, and
keeps a running total of words seen in `wordfreq-total.txt` in its owner's
directory (the only directory it can see).
"""

import json
from collections import Counter

import wit_world
from wit_world.imports import ledger, log
from wit_world.imports.fuelhost_host_types import RunError_InvalidInput, RunError_Failed
from componentize_py_types import Err

TOTAL_FILE = "wordfreq-total.txt"


def _read_total() -> int:
    try:
        with open(TOTAL_FILE) as f:
            return int(f.read().strip() or "0")
    except FileNotFoundError:
        return 0


class WitWorld(wit_world.WitWorld):
    def run(self, input: bytes) -> bytes:
        try:
            text = input.decode("utf-8")
        except UnicodeDecodeError:
            raise Err(RunError_InvalidInput("input must be UTF-8 text"))
        words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
        words = [w for w in words if w]
        if not words:
            raise Err(RunError_InvalidInput("input has no words to count"))
        ctx = ledger.context()
        total = _read_total() + len(words)
        try:
            with open(TOTAL_FILE, "w") as f:
                f.write(str(total))
        except OSError as e:
            raise Err(RunError_Failed(f"cannot record the running total: {e}"))
        log.log(log.Level.INFO, f"counted {len(words)} words for {ctx.caller}")
        # Sorted by count, then word: deterministic, and it avoids
        # Counter.most_common, whose lazy `import heapq` a componentized
        # interpreter does not bundle.
        top = sorted(Counter(words).items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        return json.dumps({"words": len(words), "top": top, "total_seen": total}).encode()
