"""Methods bitcart's merchant server calls on every coin, answered for coins without contracts or tokens.

The merchant server asks each coin for its tokens (``get_tokens``, ``getabi``), checks a token
contract (``validatecontract``), normalizes a payout or refund address (``normalizeaddress``) and
lets a customer name a refund address on a contract request (``setrequestaddress``). BTC, BCH and
XMR have no contracts, so those answers are fixed; an address is checked and normalized by the
coin's own ``normalize_address`` hook (an invalid one is the coin's invalid-address error, which
the merchant server turns into "Invalid address").
"""

from __future__ import annotations

from typing import Any

from .rpc import rpc


class NoContractsMixin:
    """get_tokens, getabi, validatecontract, normalizeaddress, setrequestaddress for a coin without contracts."""

    def normalize_address(self, address: str) -> str:
        """The address in the coin's canonical form; raise the coin's invalid-address RPCError otherwise."""
        raise NotImplementedError

    @rpc
    async def get_tokens(self) -> dict[str, Any]:
        """The coin's known tokens by symbol: none (this coin has no token contracts)."""
        return {}

    @rpc
    async def getabi(self) -> list[Any]:
        """The token contract ABI: empty (this coin has no token contracts)."""
        return []

    @rpc
    async def validatecontract(self, address: str) -> bool:
        """Whether ``address`` is a token contract: never on this coin."""
        return False

    @rpc
    async def normalizeaddress(self, address: str) -> str:
        """The address in its canonical form (an invalid address is the invalid-address error)."""
        return self.normalize_address(address)

    @rpc
    async def setrequestaddress(self, key: str, address: str) -> bool:
        """Set the address a contract request is paid from: false, requests here have their own address."""
        return False
