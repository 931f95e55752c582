"""The scanner: one task that follows monerod and finds the payments of every watch-only wallet with its view key.

wallet-rpc costs a process (~30 MiB, seconds of CPU to open) per wallet; the scanner costs a wallet its keys and
a table of its subaddress spend keys. Each round (every ``SCAN_INTERVAL``) it:

1. follows reorganisations: if the hash it stored for its top block is no longer monerod's, it drops everything
   from the fork point up (daemons/xmr_scan_store.py) and scans again from there;
2. scans each block after the lowest wallet's scan height (``get_block``, then ``get_transactions`` with
   ``decode_as_json``), for the wallets that have not seen it yet, storing each block's results in one
   transaction with the wallets' new heights, so a restart resumes at the first block not stored;
3. scans new pool transactions (``get_transaction_pool_hashes``); their outputs are kept without a height until
   a block mines them, and dropped if they leave the pool unmined;
4. reports, from the stored outputs, what is new: ``new_transaction`` per transaction and wallet, ``new_payment``
   per change of a request's status (the same Reporter and status rules as the wallet-rpc poller), once the
   blocks it scanned are reported (``new_block``, through the poller's ``reach``), as requests count their
   confirmations from the poller's chain height.

A transaction's results from the pool are kept (``SCANNED_CACHE`` transactions), so mining it costs no second
round of curve arithmetic: a block is mostly scanned before it arrives. The arithmetic (one scalar multiplication
per transaction and wallet, daemons/xmr_scan_crypto.py) runs in a worker thread; libsodium releases the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .xmr_client import MoneroError, MoneroRPC
from .xmr_poller import REORG_MARGIN, Reporter
from .xmr_requests import PaymentRequest, Transfer, now
from .xmr_scan_crypto import BadTransaction, Found, ParsedTx, parse_tx, scan_tx, subaddress, subaddress_spend_key
from .xmr_scan_store import ScanStore, ScanWallet, StoredOutput

logger = logging.getLogger(__name__)

SCAN_INTERVAL = 0.25  # get_last_block_header and get_transaction_pool_hashes are cheap
LOOKAHEAD = 200  # subaddresses watched past the last one handed out: wallet2's default minor lookahead
SCANNED_CACHE = 5000  # transactions whose results are kept, so a mined pool transaction is not scanned again
FETCH_BATCH = 100  # transactions per get_transactions call
SPENDABLE_AGE = 10  # CRYPTONOTE_DEFAULT_TX_SPENDABLE_AGE: blocks before a received output unlocks
MAX_BLOCK_NUMBER = 500_000_000  # unlock_time below: a height; above: a timestamp


class ChainMoved(Exception):
    """monerod's chain changed under a scan (a block's parent is not the block we stored): start the round anew."""


@dataclass
class Scanned:
    """A transaction's results for the wallets in ``keys`` (the scanner's wallet set when it was scanned)."""

    tx: ParsedTx
    keys: frozenset[str]
    hits: list[tuple[str, Found]]


class Scanner:
    def __init__(
        self,
        monerod: MoneroRPC,
        store: ScanStore,
        reporter: Reporter,
        net: str,
        lib: Any,
        reach: Callable[[int], Awaitable[None]],
    ) -> None:
        self.monerod = monerod
        self.store = store
        self.reporter = reporter
        self.reach = reach  # Poller.reach: reports the blocks up to a height the scan got to, if the watcher has not
        self.net = net
        self.lib = lib  # the monero library's pieces (daemons/xmr_wallet.py load_monero): addresses, base58
        self.wallets: dict[str, ScanWallet] = {}
        self.spend_keys: dict[str, dict[bytes, int]] = {}
        self.keys: frozenset[str] = frozenset()
        self.scanned: OrderedDict[str, Scanned] = OrderedDict()
        self.pool: set[str] = set()
        self.chain_count = 0  # monerod's block count at the last round
        self.dirty = True  # something to report
        self.last_report = 0.0
        self.report_interval = 2.0
        self.incomplete: set[str] = set()  # wallets whose lookahead is not made yet: not scanned until it is
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    # -- wallets ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Watch the wallets stored by earlier runs."""
        for key, address, view_key, next_minor, scanned in self.store.wallets():
            self._watch(ScanWallet(key, address, view_key, self._spend_public(address), next_minor, scanned))

    def add(self, key: str, address: str, view_key: bytes, restore_height: int) -> ScanWallet:
        """Watch a wallet: a new one from ``restore_height`` on (stored at once), a stored one (unloaded earlier)
        from where its scan stopped, with its subaddress counter."""
        wallet = self.wallets.get(key)
        if wallet is not None:
            return wallet
        stored = self.store.wallet(key)
        if stored is not None:
            next_minor, restore_height = stored
        else:
            next_minor = 1
        wallet = ScanWallet(key, address, view_key, self._spend_public(address), next_minor, restore_height)
        if stored is None:
            self.store.add_wallet(wallet)
        self._watch(wallet)
        return wallet

    def knows(self, key: str) -> bool:
        """Whether the wallet is the scanner's (watched now, or stored from an earlier load)."""
        return key in self.wallets or self.store.wallet(key) is not None

    def unwatch(self, key: str) -> None:
        self.wallets.pop(key, None)
        self.spend_keys.pop(key, None)
        self.incomplete.discard(key)
        self.keys = frozenset(self.wallets)

    def _watch(self, wallet: ScanWallet) -> None:
        """Watch the wallet; its lookahead (~10 ms of curve arithmetic) is made before its first scan, in the
        scan's worker thread, so that loading a wallet costs only the subaddresses it has handed out."""
        self.wallets[wallet.key] = wallet
        self.spend_keys[wallet.key] = {}
        self._extend(wallet, wallet.next_minor)
        self.incomplete.add(wallet.key)
        self.keys = frozenset(self.wallets)
        self.dirty = True
        self.wake.set()

    def _spend_public(self, address: str) -> bytes:
        return bytes.fromhex(self.lib.address(address).spend_key())

    def _extend(self, wallet: ScanWallet, upto: int) -> None:
        """Watch the subaddresses (0, 0) .. (0, upto - 1)."""
        table = self.spend_keys[wallet.key]
        for minor in range(len(table), upto):
            table[subaddress_spend_key(wallet.view_key, wallet.spend_public, 0, minor)] = minor

    def new_subaddress(self, key: str) -> tuple[int, str]:
        """The next subaddress of the wallet (index, address), counted durably before it is handed out."""
        wallet = self.wallets[key]
        minor = self.store.take_minor(key)
        wallet.next_minor = minor + 1
        self._extend(wallet, wallet.next_minor + (0 if key in self.incomplete else LOOKAHEAD))
        return minor, subaddress(wallet.view_key, wallet.spend_public, 0, minor, self.net, self.lib.base58)

    # -- what the daemon answers ------------------------------------------------------------------

    def height(self, key: str) -> int:
        """The wallet's height as wallet-rpc's get_height counts it: the number of blocks it has scanned."""
        return self.wallets[key].scanned

    def balance(self, key: str) -> dict[str, int]:
        """wallet-rpc's get_balance of account 0 for a view-only wallet: what it received, in blocks."""
        count = self.height(key)
        mined = [o for o in self.store.outputs(key) if o.height is not None]
        unlocked = [o for o in mined if is_unlocked(o, count)]
        return {"balance": sum(o.amount for o in mined), "unlocked_balance": sum(o.amount for o in unlocked)}

    def progress(self) -> dict[str, int]:
        """For /health: how many wallets it watches and how many blocks the furthest behind still has to scan."""
        lowest = min((w.scanned for w in self.wallets.values()), default=self.chain_count)
        return {"wallets": len(self.wallets), "blocks_behind": max(0, self.chain_count - lowest)}

    # -- the loop ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                await self.round()
            except (MoneroError, ChainMoved) as exc:
                logger.debug("scan round stopped: %s", exc)
            except Exception:
                logger.exception("scan round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), SCAN_INTERVAL)

    async def round(self) -> None:
        tip = (await self.monerod.call("get_last_block_header"))["block_header"]
        self.chain_count = int(tip["height"]) + 1
        if self.wallets:
            await self.complete_tables()
            await self.follow_reorg()
            low = min(w.scanned for w in self.wallets.values())
            for height in range(low, self.chain_count):
                await self.scan_block(height)
            await self.scan_pool()
        if self.dirty or now() - self.last_report >= self.report_interval:
            await self.report()

    async def complete_tables(self) -> None:
        for key in list(self.incomplete):
            wallet = self.wallets.get(key)
            if wallet is not None:
                await asyncio.to_thread(self._extend, wallet, wallet.next_minor + LOOKAHEAD)
            self.incomplete.discard(key)

    def ready(self) -> list[ScanWallet]:
        """The wallets that can be scanned: their whole lookahead is in the table."""
        return [w for w in self.wallets.values() if w.key not in self.incomplete]

    async def follow_reorg(self) -> None:
        top = self.store.top_block()
        if top is None:
            return
        height = top[0]
        while height >= 0:
            stored = self.store.block_hash(height)
            if stored is None:
                break  # deeper than the kept hashes: rescan from there
            if height < self.chain_count and stored == await self._hash_at(height):
                break
            height -= 1
        fork = height + 1
        if fork > top[0]:
            return
        logger.info("reorganisation: blocks from %d on are scanned again", fork)
        self.store.rewind(fork)
        for wallet in self.wallets.values():
            wallet.scanned = min(wallet.scanned, fork)
        self.dirty = True

    async def _hash_at(self, height: int) -> str:
        found = await self.monerod.call("get_block_header_by_height", {"height": height})
        return str(found["block_header"]["hash"])

    async def scan_block(self, height: int) -> None:
        block = await self.monerod.call("get_block", {"height": height})
        header = block["block_header"]
        parent = self.store.block_hash(height - 1)
        if parent is not None and parent != header["prev_hash"]:
            raise ChainMoved(f"block {height} does not follow the stored block {height - 1}")
        body = json.loads(block["json"])
        miner = parse_tx(str(header["miner_tx_hash"]), body["miner_tx"])
        wallets = [w for w in self.ready() if w.scanned <= height]
        txs = [miner, *(await self._transactions(list(block.get("tx_hashes") or [])))]
        hits = await asyncio.to_thread(self._scan_all, txs, wallets)
        self.store.record_block(height, str(header["hash"]), [w.key for w in wallets], hits)
        for wallet in wallets:
            wallet.scanned = height + 1
        self._after_hits(hits)
        self.dirty = True

    async def scan_pool(self) -> None:
        found = await self.monerod.raw("get_transaction_pool_hashes", {})
        pool = set(found.get("tx_hashes") or [])
        wallets = self.ready()
        txs = await self._transactions([t for t in pool if t not in self.pool or self._missing(t)], in_pool=True)
        hits = await asyncio.to_thread(self._scan_all, txs, wallets) if txs else []
        gone = await self._left_unmined(self.store.pool_txids() - pool)
        if hits or gone:
            self.store.record_pool(hits, gone)
            self._after_hits(hits)
            self.dirty = True
        self.pool = pool

    async def _left_unmined(self, txids: set[str]) -> list[str]:
        """Of transactions that left the pool, those no block holds (a mined one waits for its block's scan)."""
        if not txids:
            return []
        found = await self.monerod.raw("get_transactions", {"txs_hashes": sorted(txids)})
        mined = {tx["tx_hash"] for tx in found.get("txs") or [] if not tx.get("in_pool")}
        return sorted(txids - mined)

    def _missing(self, txid: str) -> bool:
        entry = self.scanned.get(txid)
        return entry is None or entry.keys is not self.keys

    async def _transactions(self, txids: list[str], in_pool: bool = False) -> list[ParsedTx]:
        """Parsed transactions; those scanned before come from the cache, the others from monerod.

        A pool transaction monerod saw double spent is left out, as the wallet-rpc poller leaves it out."""
        cached = {t: self.scanned[t].tx for t in txids if t in self.scanned}
        wanted = [t for t in txids if t not in cached]
        for start in range(0, len(wanted), FETCH_BATCH):
            batch = wanted[start : start + FETCH_BATCH]
            found = await self.monerod.raw("get_transactions", {"txs_hashes": batch, "decode_as_json": True})
            if found.get("status") != "OK":
                raise MoneroError(f"monerod error: get_transactions status {found.get('status')}")
            if found.get("missed_tx") and not in_pool:  # a block's: scanning it without them could miss a payment
                raise MoneroError(f"monerod error: {len(found['missed_tx'])} transaction(s) of a block missing")
            for item in found.get("txs") or []:
                if in_pool and item.get("double_spend_seen"):
                    continue
                try:
                    cached[item["tx_hash"]] = parse_tx(item["tx_hash"], json.loads(item["as_json"]))
                except (BadTransaction, ValueError, KeyError, TypeError) as exc:
                    logger.warning("skipped an unreadable transaction: %s", exc)
        return [cached[t] for t in txids if t in cached]

    def _scan_all(self, txs: Iterable[ParsedTx], wallets: list[ScanWallet]) -> list[tuple[str, Found]]:
        """The outputs of ``txs`` that belong to ``wallets``, reusing earlier results for the same wallet set."""
        hits: list[tuple[str, Found]] = []
        wanted = {w.key for w in wallets}
        for tx in txs:
            entry = self.scanned.get(tx.txid)
            if entry is None or entry.tx.txid != tx.txid:
                entry = Scanned(tx, frozenset(), [])
            todo = [w for w in wallets if w.key not in entry.keys]
            new_hits = [(w.key, f) for w in todo for f in scan_tx(tx, w.view_key, self.spend_keys.get(w.key, {}))]
            if todo:
                keys = entry.keys | {w.key for w in todo}
                entry = Scanned(tx, self.keys if keys >= self.keys else frozenset(keys), entry.hits + new_hits)
            self.scanned[tx.txid] = entry
            self.scanned.move_to_end(tx.txid)
            hits += [(key, found) for key, found in entry.hits if key in wanted]
        while len(self.scanned) > SCANNED_CACHE:
            self.scanned.popitem(last=False)
        return hits

    def _after_hits(self, hits: list[tuple[str, Found]]) -> None:
        """A payment to a subaddress near the end of the watched ones widens the watch, as wallet2 does."""
        for key, found in hits:
            wallet = self.wallets.get(key)
            if wallet is not None and found.minor + LOOKAHEAD > len(self.spend_keys[key]):
                self._extend(wallet, found.minor + LOOKAHEAD + 1)

    # -- events -----------------------------------------------------------------------------------

    async def report(self) -> None:
        """Events for what the stored outputs say now; safe to repeat (only changes are reported)."""
        self.dirty = False
        self.last_report = now()
        await self.reach(max((w.scanned for w in self.wallets.values()), default=0))  # statuses count from there
        for wallet, txid in self.store.unreported_txids():
            if wallet in self.wallets:
                await self.reporter.transaction(wallet, txid)
        watched = self.reporter.requests.pending_all(self.chain_count - REORG_MARGIN)  # paid ones still reorg-able
        pending = [r for r in watched if r.wallet in self.wallets]
        outputs = self.store.outputs_of_subaddresses((r.wallet, r.minor) for r in pending if r.major == 0)
        for request in pending:
            mine = [o for o in outputs.get(request.wallet, []) if o.minor == request.minor and request.major == 0]
            transfers = transfers_of(mine, self.height(request.wallet), request)
            await self.reporter.update_request(request, transfers)


def transfers_of(outputs: list[StoredOutput], count: int, request: PaymentRequest) -> list[Transfer]:
    """The outputs of a request's subaddress as wallet-rpc's get_transfers reports them: one entry per
    transaction and subaddress (amounts summed), confirmations counted from the wallet's height."""
    totals: dict[tuple[str, int], int] = {}
    heights: dict[tuple[str, int], int | None] = {}
    for output in outputs:
        if output.height is not None and output.height < request.height - REORG_MARGIN:
            continue  # before the request existed: the poller's get_transfers would not look that far back
        entry = (output.txid, output.minor)
        totals[entry] = totals.get(entry, 0) + output.amount
        heights[entry] = output.height
    transfers = []
    for (txid, minor), amount in totals.items():
        height = heights[(txid, minor)]
        confirmations = 0 if height is None else max(0, count - height)
        transfers.append(Transfer(txid, amount, minor, 0, confirmations, height is None, height or 0))
    return transfers


def is_unlocked(output: StoredOutput, count: int) -> bool:
    """wallet2's is_transfer_unlocked for a received output, ``count`` being the wallet's height."""
    assert output.height is not None
    if output.height + SPENDABLE_AGE > count:
        return False
    if output.unlock_time < MAX_BLOCK_NUMBER:
        return count >= output.unlock_time  # CRYPTONOTE_LOCKED_TX_ALLOWED_DELTA_BLOCKS = 1
    return now() >= output.unlock_time
