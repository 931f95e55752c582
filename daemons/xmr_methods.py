"""Which wallet-rpc 0.18 methods the XMR daemon passes through to a wallet's wallet-rpc, and which it refuses.

Our own @rpc methods win on a clash. The pass-through ones are those that leave the wallet's height and
balances alone (``KEEPS_SNAPSHOT``, daemons/xmr_snapshot.py) and those below, which may change them and so
void the wallet's snapshot while they run.
"""

from __future__ import annotations

from .xmr_snapshot import KEEPS_SNAPSHOT

WALLET_CHANGING_METHODS = frozenset(
    {
        "create_account",
        "transfer",
        "transfer_split",
        "sign_transfer",
        "submit_transfer",
        "sweep_dust",
        "sweep_unmixable",
        "sweep_all",
        "sweep_single",
        "relay_tx",
        "rescan_blockchain",
        "import_outputs",
        "import_key_images",
        "refresh",
        "rescan_spent",
        "prepare_multisig",
        "make_multisig",
        "export_multisig_info",
        "import_multisig_info",
        "finalize_multisig",
        "exchange_multisig_keys",
        "sign_multisig",
        "submit_multisig",
        "freeze",
        "thaw",
    }
)
WALLET_RPC_METHODS = KEEPS_SNAPSHOT | WALLET_CHANGING_METHODS
# These would open, close, replace or re-point the wallet the daemon manages: refused.
FORBIDDEN_METHODS = [
    "open_wallet",
    "close_wallet",
    "stop_wallet",
    "create_wallet",
    "generate_from_keys",
    "restore_deterministic_wallet",
    "change_wallet_password",
    "set_daemon",
    "auto_refresh",  # the poller refreshes every wallet; wallet-rpc's own refreshes would void snapshots unseen
    "start_mining",
    "stop_mining",
    "set_log_level",
    "set_log_categories",
]
