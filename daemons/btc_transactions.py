"""Transactions and fees of the BTC daemon, over hooks a library with another wallet API overrides."""

from __future__ import annotations

import logging
import string
from typing import Any

from .btc_amounts import format_amount
from .btc_errors import INVALID_TRANSACTION, TX_HASH_INVALID, TX_NOT_FOUND
from .jsonrpc import INVALID_PARAMS, RPCError
from .rpc import rpc
from .tx_cache import Decoded

logger = logging.getLogger(__name__)

MAX_FEE_TARGET = 1008  # blocks: Bitcoin Core's longest estimatesmartfee target


def check_fee_target(target: int) -> None:
    """A confirmation target in blocks, 1 to MAX_FEE_TARGET; -32602 otherwise."""
    if not 1 <= target <= MAX_FEE_TARGET:
        raise RPCError(INVALID_PARAMS, f"'target' must be between 1 and {MAX_FEE_TARGET} blocks")


class TransactionsMixin:
    """Decoding, sizing and looking up transactions; fee estimates from Electrum's config."""

    def parse_tx(self, raw_tx: str) -> Any:
        return self.electrum.transaction.tx_from_any(raw_tx)

    @rpc
    async def get_tx_size(self, raw_tx: str) -> int:
        """Estimated virtual size in bytes of a raw or partial (PSBT) transaction."""
        return self.parse_tx(raw_tx).estimated_size()

    @rpc
    async def get_tx_hash(self, raw_tx: str) -> str | None:
        """The txid of a raw transaction."""
        return self.parse_tx(raw_tx).txid()

    def parse_psbt(self, psbt: str) -> Any:
        """A partially signed transaction (PSBT, base64 or hex); anything else is the invalid-transaction error."""
        try:
            tx = self.parse_tx(psbt)
        except Exception as exc:
            raise RPCError(
                INVALID_TRANSACTION, f"failed to recognize transaction encoding: {self.exception_message(exc)}"
            ) from exc
        if not isinstance(tx, self.electrum.transaction.PartialTransaction):
            raise RPCError(INVALID_TRANSACTION, "failed to recognize transaction encoding: expected a PSBT")
        return tx

    @rpc(requires_wallet=True)
    async def adjustforhwsign(self, tx: str, fingerprint: str, derivation: str, wallet: Any = None) -> str:
        """The wallet's PSBT with the full key origins a hardware signer matches its keys by.

        A watch-only wallet restored from an account xpub does not know where that xpub sits below its
        root; the caller, who knows the device, gives the root ``fingerprint`` (8 hex digits) and the
        account's ``derivation`` (such as m/84h/1h/0h), which the wallet keeps from then on."""
        try:
            wallet.keystore.add_key_origin(derivation_prefix=derivation, root_fingerprint=fingerprint.lower())
        except Exception as exc:  # Electrum says why: not 8 hex digits, a bad path, or not this xpub's origin
            raise RPCError(INVALID_PARAMS, f"Invalid key origin for this wallet: {exc}") from exc
        partial = self.parse_psbt(tx)
        partial.add_info_from_wallet(wallet)
        partial.prepare_for_export_for_hardware_device(wallet)
        return str(partial)

    @rpc(requires_wallet=True)
    async def finalizepsbt(self, psbt: str, wallet: Any = None) -> str:
        """The network transaction (hex) of a PSBT whose signatures are all there, such as a hardware signer's."""
        partial = self.parse_psbt(psbt)
        partial.add_info_from_wallet(wallet)
        partial.finalize_psbt()
        if not partial.is_complete():
            have, need = partial.signature_count()
            message = f"Cannot finalize a partially signed transaction: {have} of {need} signatures"
            raise RPCError(INVALID_TRANSACTION, message)
        return partial.serialize_to_network()

    @rpc
    async def get_default_fee(self, tx: str | int) -> str | None:
        """The fee (in coin units) Electrum would pay for a transaction, given raw or its size in bytes."""
        if isinstance(tx, int) and not 0 < tx <= self.MAX_TX_SIZE:
            raise RPCError(INVALID_PARAMS, f"'tx' as a size must be between 1 and {self.MAX_TX_SIZE} bytes")
        size = tx if isinstance(tx, int) else await self.get_tx_size(tx)
        return format_amount(self.electrum_config.estimate_fee(size), self.COIN_DECIMALS)

    @rpc
    async def recommended_fee(self, target: int) -> int | None:
        """Fee rate in sat/kvB to confirm within ``target`` blocks (null without server estimates)."""
        check_fee_target(target)
        return self.electrum_config.eta_target_to_fee(target)

    @rpc(requires_wallet=True)
    async def get_used_fee(self, tx_hash: str, wallet: Any = None) -> str | None:
        """The fee a wallet transaction paid (null when the wallet cannot know its inputs' values)."""
        self.check_tx_hash(tx_hash)
        tx = self.wallet_transaction(wallet, tx_hash)
        if tx is None:
            raise RPCError(TX_NOT_FOUND, "Transaction not in wallet.")
        return format_amount(wallet.get_wallet_delta(tx).fee, self.COIN_DECIMALS)

    @staticmethod
    def check_tx_hash(tx_hash: str) -> None:
        """64 hex digits, as Electrum's is_hash256_str checks (Electron Cash has no such helper)."""
        if not isinstance(tx_hash, str) or len(tx_hash) != 64 or any(c not in string.hexdigits for c in tx_hash):
            raise RPCError(TX_HASH_INVALID, f"{tx_hash!r} should be a transaction hash")

    @rpc(requires_network=True)
    async def get_transaction(self, tx_hash: str, wallet: Any = None) -> dict[str, Any]:
        """A transaction decoded (inputs, outputs) with its confirmations, from the wallet or the server."""
        self.check_tx_hash(tx_hash)
        tx = self.wallet_transaction(wallet, tx_hash) if wallet is not None else None
        if tx is not None:
            confirmations = max(self.wallet_tx_confirmations(wallet, tx_hash), 0)
            return {**self.decode_once(tx, tx_hash).data, "confirmations": confirmations}
        known = self.decoded_transactions.get(tx_hash)
        if known is not None and await self.still_proven(tx_hash, known):  # in the local chain: no round trip
            return {**known.data, "confirmations": self.network.get_local_height() - known.height + 1}
        tx = await self.server_transaction(tx_hash)
        entry = self.decode_once(tx, tx_hash)
        height = await self.server_tx_height(tx_hash, tx)
        confirmations = 0 if height <= 0 else max(self.network.get_local_height() - height + 1, 0)
        if entry.height != height or confirmations <= 0:
            entry.height, entry.header = (height if confirmations > 0 else 0), None  # proven on the next call
        return {**entry.data, "confirmations": confirmations}

    async def still_proven(self, tx_hash: str, entry: Decoded) -> bool:
        """Whether the transaction is (still) in the block the local chain holds at the height the server gave.

        The server's height is proven on the transaction's second lookup (a merkle proof: one round trip,
        once), not its first, so a transaction asked about once costs what it did before; a failed proof is
        not tried again until the server gives another height. A proven position holds while the local
        chain keeps that header: a reorganisation that replaces it makes the call ask the server again."""
        if entry.height <= 0:
            return False
        if entry.header is None and entry.tried != entry.height:
            entry.tried = entry.height
            entry.header = await self.proven_header(tx_hash, entry.height)
        if entry.header is None:
            return False
        if self.local_header(entry.height) == entry.header:
            return True
        entry.header, entry.tried = None, 0  # orphaned: the next height the server gives gets a new proof
        return False

    def decode_once(self, tx: Any, tx_hash: str) -> Decoded:
        """The decoded transaction, remembered for exactly these bytes (decoding costs more than a whole call)."""
        raw = self.tx_raw(tx)
        entry = self.decoded_transactions.decoded(tx_hash, raw)
        if entry is None:
            entry = Decoded(raw, self.tx_json(tx, tx_hash))
            self.decoded_transactions.put(tx_hash, entry)
        return entry

    async def server_tx_height(self, tx_hash: str, tx: Any) -> int:
        """The server's height of a transaction, from the history of its outputs (0: unconfirmed or not found)."""
        for scripthash in self.output_scripthashes(tx):
            for item in await self.server_history(scripthash):
                if item["tx_hash"] == tx_hash:
                    return int(item["height"])
        return 0

    async def proven_header(self, tx_hash: str, height: int) -> dict[str, Any] | None:
        """The local chain's header at ``height`` once the server's merkle proof (checked as Electrum's
        verifier checks a wallet's transactions) shows the transaction in that block; None when it does
        not: the transaction is then not remembered with a position, and each call asks the server."""
        header = self.local_header(height)
        if header is None:
            return None
        try:
            proof = await self.network.get_merkle_for_transaction(tx_hash, height)
            if proof.get("block_height") != height:
                return None
            self.electrum.verifier.verify_tx_is_in_block(tx_hash, proof["merkle"], proof["pos"], header, height)
        except Exception as exc:  # no proof, a bad one, a server gone: the answer stands, unremembered
            logger.debug("no merkle proof of %s at height %d: %s", tx_hash, height, exc)
            return None
        return header

    def local_header(self, height: int) -> dict[str, Any] | None:
        """The local chain's header at ``height`` (None: not there)."""
        return self.network.blockchain().read_header(height)

    # Hooks over the library's wallet and server API (Electron Cash's differ: the BCH daemon overrides them).

    def wallet_transaction(self, wallet: Any, tx_hash: str) -> Any:
        """The wallet's copy of a transaction, or None."""
        return wallet.db.get_transaction(tx_hash)

    def wallet_tx_confirmations(self, wallet: Any, tx_hash: str) -> int:
        """Confirmations of a transaction the wallet holds (0 or less: unconfirmed)."""
        return int(wallet.adb.get_tx_height(tx_hash).conf)

    async def server_transaction(self, tx_hash: str) -> Any:
        """A transaction fetched from the server (an error when the server has none)."""
        return self.parse_tx(await self.network.get_transaction(tx_hash))

    def tx_json(self, tx: Any, tx_hash: str) -> dict[str, Any]:
        """The decoded transaction get_transaction returns."""
        return tx.to_json()

    def tx_raw(self, tx: Any) -> str:
        """The transaction's network serialization (hex): what its decoding depends on."""
        return tx.serialize()

    def output_scripthashes(self, tx: Any) -> list[str]:
        """The Electrum-protocol script hashes of the outputs that pay to an address, in output order."""
        return [self.electrum.bitcoin.address_to_scripthash(o.address) for o in tx.outputs() if o.address]

    async def server_history(self, scripthash: str) -> list[dict[str, Any]]:
        """The server's history ({tx_hash, height} items) of a script hash."""
        return await self.network.get_history_for_scripthash(scripthash)
