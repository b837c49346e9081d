"""The trading database's end state, exported into a drill's evidence and checked offline.

:func:`export_state` writes, at the end of a drill, every table the integrity check reads
(orders, executions, accounts, positions) as gzipped CSV, plus ``exported.json`` (the
database's clock at the export, and the outbox entries not yet sent), all from one
REPEATABLE READ snapshot. :func:`check_state` re-performs the integrity check on those files
alone, with no database: an auditor re-runs it on the package (``faultlab verify
--recompute``) and gets the same answer the drill journalled.

The checks are those of :func:`tradingstack.drill.check_integrity` (which runs them as SQL
on a live database); a test holds the two to the same answers. Each acknowledged order, and
each order whose request got no answer in time ("indeterminate"), is accounted for in one
outcome: ``executed``, ``resting`` (an open limit or stop order), ``open`` (a market order not
executed yet), ``cancelled``, ``rejected``, or ``absent``.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

__all__ = ["TABLES", "OUTCOMES", "export_state", "check_state", "Finding", "EndState"]

TABLES: dict[str, str] = {
    "orders": "SELECT id, client_order_id, account_id, symbol, side, type, quantity, status, reserved, "
              "created_at, done_at FROM orders ORDER BY id",
    "executions": "SELECT order_id, account_id, symbol, side, quantity, price, executed_at, settled_run "
                  "FROM executions ORDER BY seq",
    "accounts": "SELECT id, opening_cash, cash, buying_power FROM accounts ORDER BY id",
    "positions": "SELECT account_id, symbol, opening_quantity, quantity, available FROM positions "
                 "ORDER BY account_id, symbol",
}
"""The tables of the end state, each as the query that exports it."""

OUTCOMES = ("executed", "resting", "open", "cancelled", "rejected", "absent")
"""Where an order can end up; ``absent`` means it is not in the database."""

_OPEN = ("accepted", "sent")


def export_state(dsn: str, directory: Path, *, connect_timeout: float = 10.0) -> list[Path]:
    """Write the end state of the trading database at ``dsn`` into ``directory``."""
    import psycopg

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with psycopg.connect(dsn, connect_timeout=max(1, int(connect_timeout)), autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute(
            "SELECT clock_timestamp(), (SELECT count(*) FROM outbox WHERE sent_at IS NULL)").fetchone()
        assert row is not None
        exported_at, outbox = row
        for name, query in TABLES.items():
            path = directory / f"{name}.csv.gz"
            with gzip.GzipFile(path, "wb", mtime=0) as out, conn.cursor().copy(
                    f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for block in copy:
                    out.write(block)
            written.append(path)
        conn.rollback()
    meta = directory / "exported.json"
    meta.write_text(json.dumps({"exported_at": exported_at.isoformat(), "outbox_pending": outbox,
                                "tables": list(TABLES)}, indent=2) + "\n", encoding="utf-8")
    return [*written, meta]


def _rows(directory: Path, name: str) -> Iterator[dict[str, str]]:
    with gzip.open(directory / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


@dataclass(frozen=True)
class Finding:
    """One integrity violation: its kind (as :func:`tradingstack.drill.check_integrity`
    names it), the ids it concerns, and a sentence."""

    kind: str
    ids: tuple[str, ...]
    detail: str


@dataclass
class EndState:
    """The exported tables, read once."""

    exported_at: datetime
    orders: list[dict[str, str]]
    executions: list[dict[str, str]]
    accounts: list[dict[str, str]]
    positions: list[dict[str, str]]

    @classmethod
    def read(cls, directory: Path) -> EndState:
        """Read an export written by :func:`export_state`."""
        meta = json.loads((directory / "exported.json").read_text(encoding="utf-8"))
        return cls(datetime.fromisoformat(meta["exported_at"]), *(list(_rows(directory, t)) for t in TABLES))


def _money(quantity: str, price: str) -> Decimal:
    return (Decimal(quantity) * Decimal(price)).quantize(Decimal("0.0001"))


def _signed(side: str, value: Decimal, positive: str) -> Decimal:
    return value if side == positive else -value


def _reconcile(state: EndState) -> list[Finding]:
    open_buys: dict[str, Decimal] = defaultdict(Decimal)
    open_sells: dict[tuple[str, str], int] = defaultdict(int)
    for o in state.orders:
        if o["status"] in _OPEN:
            if o["side"] == "buy":
                open_buys[o["account_id"]] += Decimal(o["reserved"])
            else:
                open_sells[(o["account_id"], o["symbol"])] += int(o["quantity"])
    cash_moves: dict[bool, dict[str, Decimal]] = {True: defaultdict(Decimal), False: defaultdict(Decimal)}  # settled?
    share_moves: dict[bool, dict[tuple[str, str], int]] = {True: defaultdict(int), False: defaultdict(int)}
    for e in state.executions:
        settled = bool(e["settled_run"])
        cash_moves[settled][e["account_id"]] += _signed(e["side"], _money(e["quantity"], e["price"]), "sell")
        share_moves[settled][(e["account_id"], e["symbol"])] += int(_signed(e["side"], Decimal(e["quantity"]), "buy"))
    found = []
    for a in state.accounts:
        account = a["id"]
        expected_bp = Decimal(a["cash"]) - open_buys[account] + cash_moves[False][account]
        expected_cash = Decimal(a["opening_cash"]) + cash_moves[True][account]
        if Decimal(a["buying_power"]) != expected_bp:
            found.append(Finding("cash_mismatch", (account,), f"account {account}: buying power {a['buying_power']} "
                                 f"but fills and open orders give {expected_bp}"))
        if Decimal(a["cash"]) != expected_cash:
            found.append(Finding("settled_cash_mismatch", (account,), f"account {account}: cash {a['cash']} but "
                                 f"settled fills give {expected_cash}"))
    for p in state.positions:
        key = (p["account_id"], p["symbol"])
        expected_available = int(p["quantity"]) - open_sells[key] + share_moves[False][key]
        expected_quantity = int(p["opening_quantity"]) + share_moves[True][key]
        if int(p["available"]) != expected_available:
            found.append(Finding("position_mismatch", (key[0],), f"account {key[0]} {key[1]}: available "
                                 f"{p['available']} but fills and open orders give {expected_available}"))
        if int(p["quantity"]) != expected_quantity:
            found.append(Finding("settled_position_mismatch", (key[0],), f"account {key[0]} {key[1]}: quantity "
                                 f"{p['quantity']} but settled fills give {expected_quantity}"))
    return found


def _outcome(order: dict[str, str] | None, executed: set[str]) -> str:
    if order is None:
        return "absent"
    if order["id"] in executed or order["status"] == "filled":
        return "executed"
    if order["status"] in _OPEN:
        return "open" if order["type"] == "market" else "resting"
    return order["status"]  # cancelled or rejected


def check_state(directory: Path, acknowledged: Iterable[str], attempted: Iterable[str] = (), *,
                settle_s: float = 10.0) -> tuple[list[Finding], dict[str, str]]:
    """The integrity violations of an exported end state, and the outcome of every
    acknowledged and attempted client order id (see :data:`OUTCOMES`)."""
    state = EndState.read(directory)
    by_coid: dict[str, dict[str, str]] = {}
    counts = Counter(o["client_order_id"] for o in state.orders)
    for o in state.orders:
        by_coid.setdefault(o["client_order_id"], o)
    executions = Counter(e["order_id"] for e in state.executions)
    found: list[Finding] = []
    acked = sorted(set(acknowledged))
    lost = tuple(a for a in acked if a not in by_coid)
    if lost:
        found.append(Finding("lost", lost, f"{len(lost)} acknowledged orders are not in the database"))
    found += [Finding("duplicate", (coid,), f"{n} orders for client order id {coid}")
              for coid, n in counts.items() if n > 1]
    found += [Finding("double_execution", (order,), f"order {order} executed {n} times")
              for order, n in executions.items() if n > 1]
    horizon = state.exported_at.timestamp() - settle_s
    stuck = tuple(o["client_order_id"] for o in state.orders if o["status"] in _OPEN
                  and (o["type"] == "market" or o["status"] == "accepted")
                  and datetime.fromisoformat(o["created_at"]).timestamp() < horizon)
    if stuck:
        found.append(Finding("stuck", stuck, f"{len(stuck)} orders unexecuted after {settle_s:g}s"))
    found += _reconcile(state)
    executed = set(executions)
    outcomes = {coid: _outcome(by_coid.get(coid), executed) for coid in {*acked, *attempted}}
    return found, outcomes
