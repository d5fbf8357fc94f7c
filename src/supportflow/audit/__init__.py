"""The auditor: replay a store's log, verify every ticket against the policy in force,
check the hash chains and seals, answer as-of and what-if questions, and report.

>>> from supportflow import SupportDesk
>>> from supportflow.audit import Auditor
>>> with SupportDesk() as desk:
...     tid = desk.submit(requester="ann@example.com", subject="Cannot restore")
...     Auditor(desk).audit().clean
True
"""

from ._auditor import (
    AUTO_SPLIT_ROWS,
    DEFAULT_GRACE,
    MAX_WORKERS,
    Auditor,
    audit_store,
    open_auditor,
    seal,
)
from ._model import (
    RULES,
    AuditReport,
    HistoryEntry,
    Metrics,
    Summary,
    TicketHistory,
    Violation,
    WhatIfReport,
)
from ._registry import PolicyRegistry
from ._render import history_json, history_text, report_html, report_json, report_text
from ._seal import SealRecord
from ._toml import policy_from_toml, policy_to_toml

__all__ = [
    "AUTO_SPLIT_ROWS",
    "DEFAULT_GRACE",
    "MAX_WORKERS",
    "RULES",
    "AuditReport",
    "Auditor",
    "HistoryEntry",
    "Metrics",
    "PolicyRegistry",
    "SealRecord",
    "Summary",
    "TicketHistory",
    "Violation",
    "WhatIfReport",
    "audit_store",
    "history_json",
    "history_text",
    "open_auditor",
    "policy_from_toml",
    "policy_to_toml",
    "report_html",
    "report_json",
    "report_text",
    "seal",
]
