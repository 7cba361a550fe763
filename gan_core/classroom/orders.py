"""Orders to the process that trains: a start or a control asked in an app process that does not hold the training
lease (gan_core.classroom.lease), carried out by the one that does, with its answer.

An order is a row: a verb, its arguments as JSON, who asks (the presenter, or a student's owner token: never a session
id, which is the key to its runs) and until when the asker waits. The owner takes new rows every few tenths of a second
(`take`), carries each out as if it had been asked there, rules and all, and writes the answer; the asker polls for it.
An order nobody took by its deadline is withdrawn by its asker, who says so on the page: it is never carried out late.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gan_core.classroom.store import Store

SCHEMA = ("CREATE TABLE IF NOT EXISTS run_orders (id TEXT PRIMARY KEY, verb TEXT NOT NULL, args TEXT NOT NULL, "
          "token TEXT, presenter INTEGER NOT NULL, deadline DOUBLE PRECISION NOT NULL, taken INTEGER NOT NULL, "
          "answer TEXT)",)
ORDER_WAIT_S = 15.0  # a killed owner is replaced within ~1 s, and its successor's workers start in ~3-5 s
POLL_S = 0.05  # how often an asker looks for its answer
TAKEN_WAIT_S = 10.0  # once the owner has taken an order it is carried out: its answer is worth waiting for


@dataclass(frozen=True)
class Order:
    id: str
    verb: str
    args: dict[str, Any]
    token: str | None  # whose runs the asker's are (gan_core.runs.roles.owner_token); None: the presenter's
    presenter: bool


class Orders:
    """The run_orders table of a room's store."""

    def __init__(self, store: Store) -> None:
        self.store = store  # its table is made on first use: a manager whose folder cannot be made still opens

    # -- the asker -----------------------------------------------------------------------------------------------------
    def ask(self, verb: str, args: dict[str, Any], token: str | None, presenter: bool,
            wait_s: float = ORDER_WAIT_S) -> dict[str, Any]:
        """Send an order and wait for its answer (what the owner wrote); TimeoutError if nobody took it in time."""
        self.store.ensure("orders", SCHEMA)
        order_id = uuid.uuid4().hex
        deadline = time.time() + wait_s
        self.store.run("INSERT INTO run_orders (id, verb, args, token, presenter, deadline, taken) "
                       "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING",  # (sent again after a blip: once)
                       (order_id, verb, json.dumps(args), token, int(presenter), deadline))
        while True:
            time.sleep(POLL_S)
            rows = self.store.rows("SELECT taken, answer FROM run_orders WHERE id = ?", (order_id,))
            taken, answer = rows[0] if rows else (1, None)
            if answer is not None:
                self.store.run("DELETE FROM run_orders WHERE id = ?", (order_id,))
                return json.loads(answer)
            if time.time() < deadline or (taken and time.time() < deadline + TAKEN_WAIT_S):
                continue
            with self.store.transaction() as cursor:  # withdrawn, unless the owner took it at the last moment
                cursor.execute("DELETE FROM run_orders WHERE id = ? AND taken = 0", (order_id,))
                cursor.execute("SELECT id FROM run_orders WHERE id = ?", (order_id,))
                if cursor.fetchall():
                    continue
            raise TimeoutError(f"the process that trains this room's runs did not answer within {wait_s:.0f} s, so "
                             "nothing was done; try again in a moment")

    # -- the owner -----------------------------------------------------------------------------------------------------
    def take(self) -> list[Order]:
        """The orders waiting within their deadline, marked taken (oldest first)."""
        self.store.ensure("orders", SCHEMA)
        rows = self.store.rows("SELECT id FROM run_orders WHERE taken = 0 LIMIT 1")
        if not rows:  # the common case, a few times a second: one indexed read
            return []
        with self.store.transaction() as cursor:
            cursor.execute("SELECT id, verb, args, token, presenter FROM run_orders WHERE taken = 0 AND deadline > ? "
                           "ORDER BY deadline", (time.time(),))
            found = cursor.fetchall()
            for row in found:
                cursor.execute("UPDATE run_orders SET taken = 1 WHERE id = ?", (row[0],))
        return [Order(i, verb, json.loads(args), token, bool(presenter)) for i, verb, args, token, presenter in found]

    def answer(self, order: Order, answer: dict[str, Any]) -> None:
        """Write an order's answer (JSON), for its asker to read."""
        self.store.run("UPDATE run_orders SET answer = ? WHERE id = ?", (json.dumps(answer), order.id))
