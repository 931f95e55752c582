"""Electrum's commands served as the BTC daemon's methods (the wallet passed in where a command takes one)."""

from __future__ import annotations

from typing import Any

from .btc_amounts import MAX_SPEND, amount_text, check_expiry, check_fee_rate, format_amount, parse_amount
from .btc_errors import INVALID_TRANSACTION, WATCH_ONLY
from .btc_fast_calls import FastCallsMixin
from .jsonrpc import RPCError
from .rpc import RPCMethod

# Parameters of the libraries' commands (Electrum's and Electron Cash's use the same names) that hold
# client amounts in coin units, fee rates, or an expiry: checked before the library sees them.
AMOUNT_PARAMS = frozenset({"amount", "fee", "push_amount"})
FEE_RATE_PARAMS = frozenset({"feerate", "new_fee_rate"})
EXPIRY_PARAMS = frozenset({"expiration"})
# Commands whose result lists Electrum's exported requests or invoices, with its amount_BTC text.
LISTS_WITH_AMOUNTS = frozenset({"list_requests", "list_invoices"})
# Wallet methods whose answer depends on the wallet's history (Electrum's and Electron Cash's names, and the
# daemon's own): right after a wallet (re)loads they wait until it has caught up with the server, or a
# request paid while the daemon was down would read "Unpaid" and payto would spend coins already spent.
HISTORY_METHODS = frozenset(
    {
        "add_request",
        "addrequest",
        "addtransaction",
        "bumpfee",
        "get_invoice",
        "get_request",
        "getaddressbalance_wallet",
        "getbalance",
        "getrequest",
        "getunusedaddress",
        "history",
        "list_invoices",
        "list_requests",
        "listaddresses",
        "listrequests",
        "listunspent",
        "onchain_history",
        "payto",
        "paytomany",
        "removelocaltx",
        "get_used_fee",
    }
)

UNSIGNED_ON_WATCH_ONLY = frozenset({"payto", "paytomany"})


class CommandsMixin(FastCallsMixin):
    """Every command of the library's ``known_commands`` but ``EXCLUDED_COMMANDS``, as a dynamic method."""

    async def call(self, method: RPCMethod, bound: Any) -> Any:
        wallet = bound.arguments.get("wallet")
        online = self.network is not None  # offline, the stored history is all there is
        # A network method's headers were checked by execute (wait_network_ready) just before: checked again
        # here only while the wallet is behind.
        if (
            wallet is not None
            and (method.requires_network or (online and method.name in HISTORY_METHODS))
            and not (wallet.is_up_to_date() and (method.requires_network or self.headers_synchronized()))
        ):
            await self.wait_until(lambda: self.headers_synchronized() and wallet.is_up_to_date(), "the wallet")
        if self.dynamic_methods.get(method.name) is method:
            self.check_command_arguments(method.name, wallet, bound.arguments)
            self.check_can_sign(method.name, wallet, bound.arguments)
            result = await self.run_library_command(method, bound.arguments)
            if method.name in LISTS_WITH_AMOUNTS and isinstance(result, list):
                for item in result:
                    self.fix_amount_text(item)
            return result
        return await super().call(method, bound)

    # Commands whose bad input the library meets with a bare Exception or a TypeError (-32603): a check
    # method per command says what is wrong first (-32602).
    COMMAND_CHECKS = {
        "convert_xkey": "check_convert_xkey",
        "signmessage": "check_signmessage",
        "broadcast": "check_broadcast",
    }

    def check_command_arguments(self, name: str, wallet: Any, arguments: dict[str, Any]) -> None:
        """Amounts, fee rates and expiries of any command, then the command's own check; -32602."""
        for param, value in arguments.items():
            if value is None:
                continue
            if param in AMOUNT_PARAMS:
                arguments[param] = self.command_amount(param, value)
            elif param in FEE_RATE_PARAMS:
                check_fee_rate(param, value, self.COIN_SUPPLY)
            elif param in EXPIRY_PARAMS:
                arguments[param] = check_expiry(param, value)
            elif param == "outputs" and isinstance(value, list):  # paytomany: [[address, amount], ...]
                for output in value:
                    if isinstance(output, list | tuple) and len(output) == 2:
                        output[1] = self.command_amount("outputs", output[1])
        check = self.COMMAND_CHECKS.get(name)
        if check is not None:
            getattr(self, check)(wallet, arguments)

    def check_broadcast(self, wallet: Any, arguments: dict[str, Any]) -> None:
        """Electrum's broadcast asserts its input is hex (-32603 for a PSBT): an unsigned or partially
        signed transaction is refused as such (-32017), a complete PSBT goes out as its raw transaction."""
        tx = arguments.get("tx")
        if not isinstance(tx, str):
            return
        parsed = self.parse_tx(tx)  # undecodable: Electrum's "Failed to recognise tx encoding" (-32017)
        if not parsed.is_complete():
            raise RPCError(
                INVALID_TRANSACTION,
                "Cannot broadcast an unsigned or partially signed transaction: sign it first (signtransaction)",
            )
        arguments["tx"] = parsed.serialize()

    def fix_amount_text(self, item: Any) -> None:
        """Electrum's export writes amount_BTC as "0." or "2.": the exact amount in our decimal form instead."""
        if isinstance(item, dict) and isinstance(item.get("amount_sat"), int) and "amount_BTC" in item:
            item["amount_BTC"] = format_amount(item["amount_sat"], self.COIN_DECIMALS)

    def command_amount(self, param: str, value: Any) -> str:
        """An amount as the library's command parses it, or Electrum's spend-everything form ("!")."""
        if isinstance(value, str) and MAX_SPEND.match(value.strip()) and param != "fee":
            return value.strip()
        return amount_text(parse_amount(param, value, self.COIN_DECIMALS, self.COIN_SUPPLY))

    def check_can_sign(self, name: str, wallet: Any, arguments: dict[str, Any]) -> None:
        """Electrum's private-key commands fail on a watch-only wallet with a TypeError: say why instead.

        payto and paytomany are no such command: on a watch-only wallet Electrum returns the unsigned
        PSBT, which is how bitcart's merchant server pays out from a hardware wallet's xpub."""
        command = self.electrum.commands.known_commands[name]
        if not command.requires_password:
            return
        watch_only = wallet is not None and wallet.is_watching_only()
        unsigned = arguments.get("unsigned") or name in UNSIGNED_ON_WATCH_ONLY
        if command.requires_password and watch_only and not unsigned:
            raise RPCError(WATCH_ONLY, f"{name} needs private keys and this is a watch-only wallet")

    def commands_ready(self) -> bool:
        """Whether the library's commands can be served yet (they exist once the backend started)."""
        return self.commands is not None

    def command_function(self, name: str, command: Any) -> Any:
        """The callable that serves one library command."""
        return getattr(self.commands, name)

    def find_dynamic_method(self, name: str) -> RPCMethod | None:
        if not self.commands_ready() or name in self.EXCLUDED_COMMANDS:
            return None
        command = self.electrum.commands.known_commands.get(name)
        if command is None:
            return None
        return RPCMethod(
            name=name,
            func=self.command_function(name, command),
            requires_wallet=command.requires_wallet,
            requires_network=command.requires_network,
            doc=(command.description or "").strip(),
        )

    def list_dynamic_methods(self) -> list[str]:
        if not self.backend_loaded:
            return []
        return sorted(set(self.electrum.commands.known_commands) - self.EXCLUDED_COMMANDS)
