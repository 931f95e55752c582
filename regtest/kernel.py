"""Bitcoin Core's consensus engine (libbitcoinkernel through PyPI py-bitcoinkernel, module `pbk`) for the node.

Core, not our code, decides which blocks are valid and whether a transaction's scripts and signatures spend
its inputs. The kernel keeps its block index and UTXO set in memory, its block files in a scratch directory;
the node's own blocks.dat stays the record, so a restart or a reorganisation replays the active chain into a
fresh kernel (about 0.3 ms per regtest block). The kernel's API has no invalidateblock and no reject reasons:
reasons are read from its log ("ConnectBlock <hash> failed, <reason>", "BlockChecked: block hash=<hash>
state=<reason>"), and a reorganisation is a replay.

`pbk` is imported when a CoreKernel is made, so the Bitcoin Cash mode (which has no such library) and
importers of the node's other modules never load it.
"""

from __future__ import annotations

import functools
import gc
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from .serialize import Block, Tx

__all__ = ["CoreKernel", "KernelRejected"]

_LOG_LOCK = threading.Lock()
_LOG_LINES: list[str] = []
_LOG_CONNECTION: Any = None
_REASON_PATTERNS = (
    re.compile(r"BlockChecked: block hash=(?P<hash>[0-9a-f]{64}) state=(?P<reason>.+)"),
    re.compile(r"ConnectBlock (?P<hash>[0-9a-f]{64}) failed, (?P<reason>.+)"),
)
_SCRIPT_ERROR = re.compile(r"script-verify-flag-failed \((?P<error>[^)]*)\)")


class KernelRejected(ValueError):
    """Core refused a block; the message is Core's reason ("bad-cb-amount, coinbase pays too much ...")."""


_Call = TypeVar("_Call", bound=Callable[..., Any])


def _gc_paused(call: _Call) -> _Call:
    """Run a kernel call with Python's cyclic garbage collector paused.

    The kernel calls `_log_sink` (Python) while it holds its own, non-recursive log mutex. If the allocations
    of that callback start a collection, and the garbage holds a dropped kernel object, that object's
    destructor logs too and waits for the mutex its own thread holds: the process hangs. Seen in CI as a hang
    in ChainstateManager's constructor, when a Chain and its mempool referred to each other and so every
    dropped node was cyclic garbage. That cycle is gone (the mempool holds its chain weakly), but a kernel can
    still end up in someone's cycle (a served RegtestNode's chain is reachable from aiohttp's Application,
    which is cyclic), so every call that can log runs with collection paused; collections run between calls.
    """

    @functools.wraps(call)
    def paused(*args: Any, **kwargs: Any) -> Any:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return call(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused  # type: ignore[return-value]


def _log_sink(message: str) -> None:
    with _LOG_LOCK:
        _LOG_LINES.append(message.strip())
        del _LOG_LINES[:-200]  # only the lines of the block being processed matter


def _ensure_logging(pbk: Any) -> None:
    """One process-wide connection to the kernel's log (its logger is global), with validation debug lines."""
    global _LOG_CONNECTION
    if _LOG_CONNECTION is None:
        pbk.logging_set_options(pbk.LoggingOptions(log_timestamps=False))
        _LOG_CONNECTION = pbk.LoggingConnection(_log_sink)
        pbk.enable_log_category(pbk.LogCategory.VALIDATION)
        pbk.set_log_level_category(pbk.LogCategory.VALIDATION, pbk.LogLevel.DEBUG)


def _reason_for(block_hash: str, lines: list[str]) -> str | None:
    for pattern in _REASON_PATTERNS:
        for line in lines:
            found = pattern.search(line)
            if found and found["hash"] == block_hash and found["reason"] != "Valid":
                return found["reason"]
    return None


class CoreKernel:
    """A regtest ChainstateManager whose active chain mirrors the node's; `connect` is the only way forward."""

    def __init__(self, workdir: Path | None = None) -> None:
        import pbk  # heavy: loaded only by a node that validates with Core

        self.pbk = pbk
        _ensure_logging(pbk)
        self.parent = workdir
        self.flags = pbk.ScriptVerificationFlags.ALL  # Core's MANDATORY_SCRIPT_VERIFY_FLAGS (see verify_inputs)
        self.dir: Path | None = None
        self.chainman: Any = None
        self.reset()

    # ---- lifecycle ----
    @_gc_paused
    def reset(self, blocks: Iterable[Block] = ()) -> None:
        """A fresh chainstate at genesis (files in a new scratch dir), then `blocks` connected in order."""
        self.close()
        if self.parent is not None:
            self.parent.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=self.parent))
        # its block files (~18 MB preallocated) go when the kernel is dropped or the process exits
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.dir), True)
        context = self.pbk.make_context(self.pbk.ChainType.REGTEST)
        options = self.pbk.ChainstateManagerOptions(context, str(self.dir), str(self.dir / "blocks"))
        options.update_block_tree_db_in_memory(True)
        options.update_chainstate_db_in_memory(True)
        options.set_worker_threads_num(0)  # script checks in the caller's thread: no idle threads per node
        self.chainman = self.pbk.ChainstateManager(options)
        for block in blocks:
            self.connect(block)

    def __del__(self) -> None:
        # dropped by its last reference (not by a collection): destroy the chainstate under the pause, as close does
        if getattr(self, "chainman", None) is not None:
            self.close()

    @_gc_paused
    def close(self) -> None:
        self.chainman = None  # destroyed here (refcount), before its files go
        if self.dir is not None:
            self._cleanup()
            self.dir = None

    # ---- blocks ----
    @property
    def tip_hash(self) -> str:
        chain = self.chainman.get_active_chain()
        return str(chain.block_tree_entries[chain.height].block_hash)

    @_gc_paused
    def process(self, block: Block) -> str | None:
        """Hand `block` to Core; None if it is now the tip, else Core's reason (or why it is not the tip)."""
        block_hash = block.hash_hex
        with _LOG_LOCK:
            _LOG_LINES.clear()
        try:
            self.chainman.process_block(self.pbk.Block(block.serialize()))
        except self.pbk.KernelException as e:
            failure: str | None = str(e)
        else:
            failure = None
        if self.tip_hash == block_hash:
            return None
        with _LOG_LOCK:
            lines = list(_LOG_LINES)
        return _reason_for(block_hash, lines) or failure or "not connected by Core (not on its best chain)"

    def connect(self, block: Block) -> None:
        """Core validates `block` on top of its tip and makes it the tip, or KernelRejected names Core's reason."""
        reason = self.process(block)
        if reason is not None:
            raise KernelRejected(reason)

    def script_error(self, block: Block) -> str | None:
        """Core's script error text for a block (built on the tip) holding a transaction whose input failed.

        ScriptPubkey.verify answers only yes/no; connecting a block is the kernel's one path that names the
        failed check (ScriptErrorString). The block is invalid by construction, so Core marks it failed and
        keeps its tip; if it were ever accepted, the caller must rebuild the kernel (returns None then).
        """
        reason = self.process(block)
        if reason is None:
            return None
        found = _SCRIPT_ERROR.search(reason)
        return found["error"] if found else reason

    # ---- transactions ----
    @_gc_paused
    def verify_inputs(self, tx: Tx, spent: list[tuple[int, bytes]]) -> int | None:
        """The index of the first input whose script fails against its spent (amount, scriptPubKey), or None.

        The full spent-outputs set goes into the precomputed data, so segwit v0 (amount in the sighash) and
        taproot (every spent output in the sighash) are checked as Core checks them. Flags: all that the
        kernel offers, which are Core's mandatory (consensus) flags; Core's policy-only standard flags
        (LOW_S, NULLFAIL, CLEANSTACK, MINIMALDATA, ...) are not exposed by libbitcoinkernel.
        """
        from pbk.script import PrecomputedTransactionData

        pbk = self.pbk
        ktx = pbk.Transaction(tx.serialize())
        outputs = [pbk.TransactionOutput(pbk.ScriptPubkey(script), value) for value, script in spent]
        precomputed = PrecomputedTransactionData(ktx, outputs)
        for index, output in enumerate(outputs):
            try:
                ok = output.script_pubkey.verify(output.amount, ktx, precomputed, index, self.flags)
            except pbk.ScriptVerifyException:
                ok = False
            if not ok:
                return index
        return None
