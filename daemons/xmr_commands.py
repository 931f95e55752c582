"""The XMR daemon's methods that only wallet-rpc can answer: spending (``payto``/``broadcast``, the bitcart SDK's
flow), the fee estimate, and wallet-rpc's own methods passed through by name (or refused: those that would
open, close or re-point the wallet the daemon manages, daemons/xmr_methods.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, RPCError
from .rpc import RPCMethod, rpc
from .xmr_client import MoneroRPC, MoneroRPCError
from .xmr_methods import FORBIDDEN_METHODS, WALLET_RPC_METHODS
from .xmr_requests import from_atomic
from .xmr_wallet import XMRWallet

TYPICAL_TX_WEIGHT = 2200  # a 2-input, 2-output transaction on regtest weighed 2166


class WalletRPCCommandsMixin:
    """Mixed into XMRDaemon, whose wallet_call, validateaddress, _amount, monerod and methods it uses."""

    monerod: MoneroRPC
    methods: dict[str, RPCMethod]
    wallet_call: Callable[..., Any]
    validateaddress: Callable[..., Any]
    _amount: Callable[[Any], int]

    # -- spending ---------------------------------------------------------------------------------

    @rpc(requires_wallet=True)
    async def payto(
        self,
        wallet: XMRWallet,
        destination: str,
        amount: Any,
        fee: Any = None,
        feerate: Any = None,
        addtransaction: bool = True,
        priority: int = 0,
    ) -> str:
        """Build and sign a transfer, not yet relayed: returns its metadata for ``broadcast`` (the SDK's flow)."""
        if wallet.view_only:
            raise RPCError(-32018, "Cannot send from a view-only wallet")
        if fee is not None or feerate is not None:
            raise RPCError(INVALID_PARAMS, "Monero sets fees by priority (0-4): fee and feerate are not supported")
        if not await self.validateaddress(destination):
            raise RPCError(-32013, f"Invalid address: {destination}")
        params = {
            "destinations": [{"address": destination, "amount": self._amount(amount)}],
            "account_index": 0,
            "priority": priority,
            "do_not_relay": True,
            "get_tx_metadata": True,
        }
        made = await self.wallet_call(wallet, "transfer", params)
        return str(made["tx_metadata"])

    @rpc(requires_wallet=True)
    async def broadcast(self, wallet: XMRWallet, tx: str) -> str:
        """Relay a transaction made by ``payto``; returns its hash."""
        return str((await self.wallet_call(wallet, "relay_tx", {"hex": tx}))["tx_hash"])

    @rpc
    async def get_default_fee(self, tx_size: int = TYPICAL_TX_WEIGHT) -> str:
        """monerod's fee estimate for a transaction of this weight (default: a typical 2-output one)."""
        estimate = await self.monerod.call("get_fee_estimate")
        per_byte, mask = int(estimate["fee"]), int(estimate.get("quantization_mask", 1)) or 1
        total = (per_byte * tx_size + mask - 1) // mask * mask
        return from_atomic(total)

    # -- pass-through -----------------------------------------------------------------------------

    def find_dynamic_method(self, name: str) -> RPCMethod | None:
        if name in FORBIDDEN_METHODS:
            return RPCMethod(name, self._forbidden(name), doc="Refused: the daemon manages its wallets itself")
        if name not in WALLET_RPC_METHODS:
            return None

        async def passthrough(wallet: XMRWallet, **params: Any) -> Any:
            try:
                return await self.wallet_call(wallet, name, params)
            except MoneroRPCError as exc:
                if exc.code == METHOD_NOT_FOUND:
                    raise RPCError(METHOD_NOT_FOUND, "Procedure not found") from None
                raise

        return RPCMethod(name, passthrough, requires_wallet=True, doc=f"wallet-rpc's {name}, with named params")

    def _forbidden(self, name: str) -> Callable[..., Any]:
        async def refuse(**params: Any) -> None:
            raise RPCError(-32019, f"{name} is refused: the daemon manages its wallets itself")

        return refuse

    def list_dynamic_methods(self) -> list[str]:
        return sorted(name for name in WALLET_RPC_METHODS.union(FORBIDDEN_METHODS) if name not in self.methods)
