"""Bitcoin Core's RPC error codes (src/rpc/protocol.h) and the exception that carries one to the client."""

from __future__ import annotations

RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25  # also RPC_TRANSACTION_ERROR
RPC_VERIFY_REJECTED = -26  # RPC_TRANSACTION_REJECTED
RPC_VERIFY_ALREADY_IN_CHAIN = -27


class RPCError(Exception):
    """An error answered to the RPC client as {"code": code, "message": message}."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message}


def rejected(reason: str) -> RPCError:
    """A mempool policy/consensus rejection (Core's TransactionError::MEMPOOL_REJECTED)."""
    return RPCError(RPC_VERIFY_REJECTED, reason)
