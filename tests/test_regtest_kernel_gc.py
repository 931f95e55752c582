"""The node never hangs when Python's garbage collector runs inside a callback of Bitcoin Core's kernel.

The kernel calls the node's log sink while holding its own log mutex. A collection started by that callback's
allocations, with a dropped node (cyclic garbage: a Chain and its mempool refer to each other) pending, made
the dropped kernel's destructor wait for the mutex its own thread held: the CI run hung in
test_invalidate_and_reconsider_reorganise_like_core. The script below sets that up deterministically; the
old code hangs in it, so it runs in a child process that is killed if it does not finish.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import gc
    import regtest.kernel as kernel
    from regtest.chain import Chain

    log_sink = kernel._log_sink

    def allocating_sink(message):
        junk = [[] for _ in range(300_000)]  # a callback's allocations, enough to start a collection
        log_sink(message)

    kernel._log_sink = allocating_sink  # installed before the first kernel connects to the log
    live = Chain()
    gc.disable()
    dropped = Chain()
    dropped.loop = dropped  # cyclic garbage holding a kernel, as a dropped node is
    del dropped
    gc.set_threshold(200_000)  # the next collection starts inside the sink, not before the kernel call
    gc.enable()
    live.connect_block(live.build_block(b"\\x51"))
    print("connected", live.height)
    """
)


def test_a_collection_inside_a_kernel_callback_does_not_hang_the_node():
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=180, check=False
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the node hung: a kernel object was destroyed inside the kernel's log callback") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["connected", "1"]
