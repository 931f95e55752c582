"""The node never hangs when Python's garbage collector runs inside a callback of Bitcoin Core's kernel.

The kernel calls the node's log sink while holding its own log mutex. A collection started by that callback's
allocations, with a dropped node pending as cyclic garbage (a Chain and its mempool used to refer to each
other), made the dropped kernel's destructor wait for the mutex its own thread held: the CI run hung in
test_invalidate_and_reconsider_reorganise_like_core. The script below sets that up deterministically (with a
cycle of its own, as any cyclic garbage holding a kernel would); the old code hangs in it, so it runs in a
child process that is killed if it does not finish. The second test keeps a dropped Chain out of the
collector's hands altogether: reference counting alone frees it and its kernel; the third, a served node's
kernel, which aiohttp's cyclic Application would otherwise leave to a collection.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

from regtest.chain import Chain
from regtest.node import RegtestNode

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
    dropped.loop = dropped  # cyclic garbage holding a kernel (a dropped node was, before the mempool held it weakly)
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


def test_a_dropped_chain_and_its_kernel_are_freed_without_the_collector():
    was_enabled = gc.isenabled()
    gc.disable()  # only reference counting may free them
    try:
        chain = Chain()
        chain.connect_block(chain.build_block(b"\x51"))
        node = RegtestNode()  # a node that never served: node -> methods -> chain, no cycle either
        refs = [weakref.ref(chain), weakref.ref(chain.mempool), weakref.ref(chain.kernel)]
        refs += [weakref.ref(node), weakref.ref(node.chain), weakref.ref(node.chain.kernel)]
        del chain, node
        assert [ref() for ref in refs] == [None] * len(refs)
    finally:
        if was_enabled:
            gc.enable()


async def test_a_served_node_closes_its_kernel_when_it_leaves_its_context():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        async with RegtestNode() as node:
            kernel = node.chain.kernel
            kernel_dir = kernel.dir
            assert kernel.chainman is not None and kernel_dir.exists()
        del node  # aiohttp's Application is cyclic and holds the chain until a collection: the kernel must not wait
        assert kernel.chainman is None and not kernel_dir.exists()
    finally:
        if was_enabled:
            gc.enable()
