"""`SupportPolicy` <-> TOML text. Pure: parses and renders strings, never opens a file.

The TOML keys are the fields of `SupportPolicy.to_dict()`::

    name = "longer-close"
    zone = "America/Chicago"
    close_after_days = 5
    pending_solve_after_days = 7
    follow_up_copies = ["product", "requester", "severity", "subject", "tags"]

    # optional: the whole transition table; without it the default table applies
    [[transitions]]
    status = "new"
    action = "assign"
    to = "open"

Omitted fields take their defaults.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

from ..policy import SupportPolicy

__all__ = ["policy_from_toml", "policy_to_toml"]


def policy_from_toml(text: str) -> SupportPolicy:
    """The policy described by TOML `text`; `ValueError` says what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not valid TOML: {error}") from None
    try:
        return SupportPolicy.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"not a valid policy: {detail}") from None


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table; keys are plain identifiers or quoted
        items = ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    msg = f"cannot write {value!r} as TOML"
    raise TypeError(msg)


def policy_to_toml(policy: SupportPolicy, *, transitions: bool = True) -> str:
    """`policy` as TOML text that `policy_from_toml` reads back to an equal policy.

    With `transitions=False` the table is left out (it then reads back as the default table).
    """
    data = policy.to_dict()
    rows = data.pop("transitions")
    lines = [f"{key} = {_value(value)}" for key, value in data.items()]
    if transitions:
        for row in rows:
            lines.append("")
            lines.append("[[transitions]]")
            lines.extend(f"{key} = {_value(value)}" for key, value in row.items())
    return "\n".join(lines) + "\n"
