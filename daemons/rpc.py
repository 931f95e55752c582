"""The method registry: the ``@rpc`` decorator and binding JSON arguments to a method's signature.

Binding happens before a method runs, so arguments that do not fit its signature, or that have
the wrong JSON type for a simply-annotated parameter, are the client's error (-32602) and never
reach the method as an internal error. The parameters ``wallet`` and ``identity`` are injected by
the daemon from the request's ``xpub``; a client cannot pass them.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .jsonrpc import INVALID_PARAMS, RPCError, check_key_text

INJECTED = ("wallet", "identity")
# Parameters whose strings a backend decodes as keys or addresses (base58, bech32, mnemonics), on any
# daemon and under any casing: their strings get the identity's length cap (MAX_KEY_LENGTH) before
# the method runs, so no client string makes a decoder work for long on the event loop.
KEY_PARAMS = frozenset(
    {
        "key", "xpub", "xkey", "xprv", "seed", "mnemonic", "mpk", "privkey", "pubkey", "address",
        "destination", "txid", "tx_hash", "txhash", "view_key", "spend_key", "toaddress", "fromaddress",
    }
)  # fmt: skip


def is_key_param(name: str) -> bool:
    return name.lower() in KEY_PARAMS


RPC_ATTRIBUTE = "__rpc__"


@dataclass(frozen=True)
class RPCOptions:
    name: str | None = None
    requires_wallet: bool = False
    requires_network: bool = False
    aliases: tuple[str, ...] = ()


@dataclass
class RPCMethod:
    """A callable exposed through ``POST /``; ``func`` may be sync or async."""

    name: str
    func: Callable[..., Any]
    requires_wallet: bool = False
    requires_network: bool = False
    doc: str = ""
    aliases: tuple[str, ...] = ()

    # What follows is worked out once per method, on first use (functools.cached_property: later reads
    # are plain attribute reads, which matters on the path of every call).

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        try:
            return inspect.signature(self.func)
        except (TypeError, ValueError):
            anything = [
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
            return inspect.Signature(anything)

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.func)
        except Exception:  # unresolvable annotations only lose the type check
            return {}

    @functools.cached_property
    def client_signature(self) -> inspect.Signature:
        """The signature without the injected parameters: what a client's arguments must fit."""
        kept = [p for p in self.signature.parameters.values() if p.name not in INJECTED]
        return self.signature.replace(parameters=kept)

    @functools.cached_property
    def checks(self) -> dict[str, set[type]]:
        """The JSON types each simply-annotated parameter accepts."""
        checks = {}
        for name, annotation in self.hints.items():
            allowed = _union_members(annotation)
            if allowed is not None:
                checks[name] = allowed
        return checks

    @functools.cached_property
    def exact(self) -> dict[str, type]:
        """Parameters whose check accepts one JSON type only, unchanged: a value of exactly that type passes as is."""
        exact = {}
        for name, allowed in self.checks.items():
            kinds = allowed - {type(None)}
            if len(kinds) == 1 and (kind := next(iter(kinds))) in _UNCHANGED:
                exact[name] = kind
        return exact

    def takes(self, name: str) -> bool:
        return name in self.signature.parameters

    @functools.cached_property
    def takes_wallet(self) -> bool:
        return "wallet" in self.signature.parameters

    def public_params(self) -> list[str]:
        """The parameters a client passes, as ``help`` and ``/spec`` show them."""
        shown = []
        for param in self.signature.parameters.values():
            if param.name in INJECTED:
                continue
            text = param.name
            if param.kind is param.VAR_POSITIONAL:
                text = f"*{param.name}"
            elif param.kind is param.VAR_KEYWORD:
                text = f"**{param.name}"
            elif param.default is not param.empty:
                text = f"{param.name}={param.default!r}"
            shown.append(text)
        return shown

    def describe(self) -> dict[str, Any]:
        return {
            "params": self.public_params(),
            "requires_wallet": self.requires_wallet,
            "requires_network": self.requires_network,
            "doc": self.doc,
        }

    def bind(self, args: list[Any], kwargs: dict[str, Any], injected: dict[str, Any]) -> inspect.BoundArguments:
        """Bind client arguments plus injected ones; anything that does not fit is -32602."""
        if kwargs:
            for name in INJECTED:
                if name in kwargs:
                    raise RPCError(INVALID_PARAMS, f"'{name}' is not an argument: pass the wallet as 'xpub'")
        given = self.fast_bind(args, kwargs) if kwargs or self.plan is None else self.fast_bind_positional(args)
        if given is None:
            try:
                given = self.client_signature.bind(*args, **kwargs).arguments
            except TypeError as exc:
                raise RPCError(INVALID_PARAMS, f"Invalid params for {self.name}: {exc}") from exc
        # Rebuild against the full signature so injected parameters keep their place.
        arguments: dict[str, Any] = {}
        for name, is_injected, is_key, allowed, exact in self.steps:
            if is_injected and name in injected:
                arguments[name] = injected[name]
            elif name in given:
                value = given[name]
                if is_key:
                    check_key_values(name, value)
                if allowed is not None and type(value) is not exact:
                    value = check_value(name, value, allowed)
                arguments[name] = value
        return inspect.BoundArguments(self.signature, arguments)  # type: ignore[arg-type]

    @functools.cached_property
    def steps(self) -> tuple[tuple[str, bool, bool, set[type] | None, type | None], ...]:
        """Per parameter, in order, what binding does with it: (name, injected, a key whose strings are
        capped, the JSON types allowed if checked, the one type passed as is)."""
        checks, exact, keys = self.checks, self.exact, self.key_names
        return tuple((name, name in INJECTED, name in keys, checks.get(name), exact.get(name)) for name in self.names)

    @functools.cached_property
    def key_names(self) -> frozenset[str]:
        """The parameters whose strings are keys or addresses (KEY_PARAMS), and ``**kwargs``, which may hold some."""
        params = self.signature.parameters
        return frozenset(
            name for name in self.names if is_key_param(name) or params[name].kind is inspect.Parameter.VAR_KEYWORD
        )

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """The names of all parameters, injected ones included, in order."""
        return tuple(self.signature.parameters)

    @functools.cached_property
    def by_keyword(self) -> bool:
        """True when calling ``func(**bound.arguments)`` is the same call as ``func(*bound.args, **bound.kwargs)``.

        That holds for a plain function or method whose parameters are all positional-or-keyword or
        keyword-only; a wrapper (``__wrapped__``) may accept other forms than the signature it shows.
        """
        func = self.func
        plain = inspect.isfunction(func) or inspect.ismethod(func)
        wrapped = hasattr(getattr(func, "__func__", func), "__wrapped__")
        kinds = {p.kind for p in self.signature.parameters.values()}
        keyword_kinds = {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
        return plain and not wrapped and kinds <= keyword_kinds

    @functools.cached_property
    def is_async(self) -> bool:
        """True when ``func`` is a coroutine function: its result is always a coroutine, to await."""
        return inspect.iscoroutinefunction(self.func)

    @functools.cached_property
    def plan(self) -> tuple[tuple[str, ...], frozenset[str]] | None:
        """(parameter names, required names) when every client parameter is a plain one, else None."""
        params = list(self.client_signature.parameters.values())
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        required = frozenset(p.name for p in params if p.default is p.empty)
        return (tuple(p.name for p in params), required) if plain else None

    def fast_bind_positional(self, args: list[Any]) -> dict[str, Any] | None:
        """``fast_bind`` without named arguments (the SDK's usual call): the plan's names zipped with ``args``."""
        names, required = self.plan  # type: ignore[misc]
        if len(args) > len(names):
            return None
        given = dict(zip(names, args, strict=False))
        return given if len(given) == len(names) or required.issubset(given) else None

    def fast_bind(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """inspect's bind, for the common signatures, at a fraction of its cost; None: ask inspect."""
        plan = self.plan
        if plan is None or len(args) > len(plan[0]):
            return None
        names, required = plan
        given = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name in given or name not in names:
                return None  # inspect words the error
            given[name] = value
        return given if required.issubset(given) else None


def rpc(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    requires_wallet: bool = False,
    requires_network: bool = False,
    aliases: tuple[str, ...] = (),
) -> Any:
    """Mark a daemon method as callable through ``POST /`` (usable bare or with options)."""
    options = RPCOptions(name, requires_wallet, requires_network, tuple(aliases))

    def mark(target: Callable[..., Any]) -> Callable[..., Any]:
        setattr(target, RPC_ATTRIBUTE, options)
        return target

    return mark(func) if func is not None else mark


def collect_methods(instance: object) -> dict[str, RPCMethod]:
    """Every ``@rpc`` method of an instance, by name and alias.

    Walking the MRO from the base up means a subclass may override a decorated method without
    decorating it again, and its version (found by getattr) is the one registered.
    """
    registry: dict[str, RPCMethod] = {}
    seen: dict[str, RPCOptions] = {}
    for cls in reversed(type(instance).__mro__):
        for attr, value in vars(cls).items():
            options = getattr(value, RPC_ATTRIBUTE, None)
            if isinstance(options, RPCOptions):
                seen[attr] = options
    for attr, options in seen.items():
        bound = getattr(instance, attr)
        method = RPCMethod(
            name=options.name or attr,
            func=bound,
            requires_wallet=options.requires_wallet,
            requires_network=options.requires_network,
            doc=inspect.getdoc(bound) or "",
            aliases=options.aliases,
        )
        for key in (method.name, *method.aliases):
            registry[key] = method
    return registry


def check_key_values(name: str, value: Any) -> None:
    """Cap the key-like strings of one argument: the string itself, or the named ones of ``**kwargs``."""
    if isinstance(value, str):
        check_key_text(name, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and is_key_param(key):
                check_key_text(key, item)


_SIMPLE = {str, int, float, bool, list, dict, Decimal}
# The types check_value returns unchanged when they are the only one allowed (float and Decimal convert).
_UNCHANGED = {str, int, bool, list, dict}


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check a JSON value against a simple annotation; other annotations are left to the method."""
    allowed = _union_members(annotation)
    return value if allowed is None else check_value(name, value, allowed)


def check_value(name: str, value: Any, allowed: set[type]) -> Any:
    """The value converted to one of the allowed types, or -32602."""
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        converted = _convert(value, kind)
        if converted is not _NO:
            return converted
    expected = " or ".join(sorted(k.__name__ for k in allowed if k is not type(None)))
    raise RPCError(INVALID_PARAMS, f"Invalid value for '{name}': expected {expected}, got {type(value).__name__}")


def _union_members(annotation: Any) -> set[type] | None:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = set(typing.get_args(annotation))
    elif origin in (list, dict):
        members = {origin}
    else:
        members = {annotation}
    members = {typing.get_origin(m) or m for m in members}
    if not members - {type(None)} or not (members - {type(None)}) <= _SIMPLE:
        return None
    return members


_NO = object()
# Decimals beyond this exponent are no amount, and arithmetic on them overflows the default context.
MAX_DECIMAL_EXPONENT = 1000


def _convert(value: Any, kind: type) -> Any:
    if kind is bool:
        return value if isinstance(value, bool) else _NO
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            try:  # isdigit() also admits characters such as '²', and very long numbers do not convert
                return int(value)
            except ValueError:
                return _NO
        return _NO
    if kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return _NO
        try:
            return float(value)
        except OverflowError:  # an integer beyond float's range
            return _NO
    if kind is Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return _NO
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError):
            return _NO
        if not number.is_finite() or (number and abs(number.adjusted()) > MAX_DECIMAL_EXPONENT):
            return _NO
        return number
    return value if isinstance(value, kind) else _NO
