"""Budgets: refuse (or warn about) the next SDK call once spend has passed a limit.

How it works, and why it is cheap: every finished call's capture is appended to the pending list
of each budget that covers it (a list append on the hot path). Before each counted call the
guard settles those pending captures into spend (building their records, with cost, once) and
compares spend in the current period with the limit. Nothing is sent when the call is refused.

Overshoot bound: spend is known only once a call has finished, so a call is refused only after
the calls that crossed the limit have completed. Calls already in flight when the limit is
crossed are not stopped: with ``N`` calls running concurrently, spend can end above the limit
by at most the cost of those ``N`` in-flight calls (the one that crossed the limit included).
Calls whose model has no known price add nothing to spend; they are counted in ``unpriced``.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ._internal import internal_error, logger

if TYPE_CHECKING:
    from ._capture import Capture
    from ._record import TokenUsageRecord
    from ._scope import Scope

__all__ = ["Budget", "BudgetEvent", "BudgetExceededError", "install_budget"]

Period = Literal["hour", "day", "week", "month"]
_PER_KEYS = ("user_id", "session_id", "trace_name", "model", "provider")


class BudgetExceededError(RuntimeError):
    """Raised into the caller, before any request is sent, by a Budget in ``raise`` mode."""

    def __init__(self, event: BudgetEvent) -> None:
        self.event = event
        self.budget = event.budget
        self.key = event.key
        self.spent_usd = event.spent_usd
        self.limit_usd = event.limit_usd
        who = f" for {event.per}={event.key!r}" if event.per else ""
        when = f" this {event.period}" if event.period else ""
        super().__init__(
            f"ai-tokentrace budget{who} exceeded{when}: spent ${event.spent_usd:.6f} "
            f"of ${event.limit_usd:.6f}; call refused before it was sent"
        )


class BudgetEvent(NamedTuple):
    """What ``on_exceed`` receives: which budget, for whom, how much, since when."""

    budget: Budget
    key: str | None
    per: str | None
    spent_usd: float
    limit_usd: float
    period: str | None
    period_start: datetime | None


def _period_index(period: str | None, t: float) -> int:
    if period is None:
        return 0
    if period == "hour":
        return int(t // 3600)
    if period == "day":
        return int(t // 86400)
    if period == "week":  # weeks start on Monday, UTC (1970-01-01 was a Thursday)
        return int((t // 86400 + 3) // 7)
    dt = time.gmtime(t)
    return dt.tm_year * 12 + dt.tm_mon - 1


def _period_start(period: str | None, index: int) -> datetime | None:
    if period is None:
        return None
    if period == "hour":
        ts = index * 3600.0
    elif period == "day":
        ts = index * 86400.0
    elif period == "week":
        ts = (index * 7 - 3) * 86400.0
    else:
        ts = float(calendar.timegm((index // 12, index % 12 + 1, 1, 0, 0, 0)))
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class Budget:
    """A spend limit in USD, optionally per period and per user (or other label).

    ``Budget(limit_usd=5.0, period="day", per="user_id", mode="raise", on_exceed=callback)``:
    pass it to ``instrument(budget=...)`` (every call) or ``trace_tokens(..., budget=...)`` (the
    calls made inside). ``raise`` refuses the next call with :class:`BudgetExceededError` before
    any request is sent; ``warn`` logs a warning. ``on_exceed(event)`` runs once per period (and
    key) in both modes. Periods are UTC calendar hours/days/weeks/months; ``None`` never resets.
    ``per`` is one of ``user_id``, ``session_id``, ``trace_name``, ``model``, ``provider``.
    """

    def __init__(
        self,
        limit_usd: float,
        *,
        period: Period | None = None,
        per: str | None = None,
        mode: Literal["raise", "warn"] = "raise",
        on_exceed: Callable[[BudgetEvent], Any] | None = None,
        name: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(limit_usd, (int, float)) or isinstance(limit_usd, bool) or limit_usd < 0:
            raise ValueError(f"limit_usd must be a non-negative number, not {limit_usd!r}")
        if period not in (None, "hour", "day", "week", "month"):
            raise ValueError(
                f"period must be 'hour', 'day', 'week', 'month' or None, not {period!r}"
            )
        if per is not None and per not in _PER_KEYS:
            raise ValueError(f"per must be one of {', '.join(_PER_KEYS)} or None, not {per!r}")
        if mode not in ("raise", "warn"):
            raise ValueError(f"mode must be 'raise' or 'warn', not {mode!r}")
        self.limit_usd = float(limit_usd)
        self.period = period
        self.per = per
        self.mode = mode
        self.on_exceed = on_exceed
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[Capture] = deque()
        self._spent: dict[tuple[int, str | None], float] = {}  # (period index, key) -> USD
        self._notified: set[tuple[int, str | None]] = set()
        self._period_now = 0
        self.unpriced = 0  # finished calls whose price is unknown (not counted in spend)
        self.calls = 0
        _enable_hooks()

    # -- reading -------------------------------------------------------------------------
    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        from . import _capture

        return _capture.wall_clock()

    def spent(self, key: str | None = None) -> float:
        """USD spent in the current period (for ``key`` when the budget is ``per`` something)."""
        index = _period_index(self.period, self._now())
        with self._lock:
            self._settle(index)
            return self._spent.get((index, key), 0.0)

    def remaining(self, key: str | None = None) -> float:
        return max(0.0, self.limit_usd - self.spent(key))

    def reset(self) -> None:
        """Forget all spend (e.g. after raising a limit by hand)."""
        with self._lock:
            self._pending.clear()
            self._spent.clear()
            self._notified.clear()

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (
            f"<Budget{label} limit_usd={self.limit_usd} period={self.period} per={self.per} "
            f"mode={self.mode}>"
        )

    # -- accounting ----------------------------------------------------------------------
    def _key_of_record(self, rec: TokenUsageRecord) -> str | None:
        per = self.per
        if per is None:
            return None
        value = getattr(rec, per)
        return None if value is None else str(value)

    def _settle(self, index: int) -> None:
        """Fold finished calls into spend (caller holds the lock); drop past periods."""
        if index != self._period_now:
            self._period_now = index
            for k in [k for k in self._spent if k[0] < index]:
                del self._spent[k]
            self._notified = {k for k in self._notified if k[0] >= index}
        pending = self._pending
        while pending:
            capture = pending.popleft()
            rec = capture.record()
            self.calls += 1
            cost = rec.cost_usd
            if cost is None:
                self.unpriced += 1
                continue
            when = rec.timestamp.timestamp()
            slot = (_period_index(self.period, when), self._key_of_record(rec))
            if slot[0] < index:
                continue  # finished in a past period
            self._spent[slot] = self._spent.get(slot, 0.0) + cost

    def _check(self, key: str | None) -> None:
        """Refuse or warn if spend for ``key`` has reached the limit in this period."""
        index = _period_index(self.period, self._now())
        with self._lock:
            self._settle(index)
            spent = self._spent.get((index, key), 0.0)
            if spent < self.limit_usd:
                return
            first = (index, key) not in self._notified
            self._notified.add((index, key))
        event = BudgetEvent(
            self,
            key,
            self.per,
            spent,
            self.limit_usd,
            self.period,
            _period_start(self.period, index),
        )
        if first:
            self._notify(event)
        if self.mode == "raise":
            raise BudgetExceededError(event)

    def _notify(self, event: BudgetEvent) -> None:
        who = f" for {event.per}={event.key!r}" if event.per else ""
        logger.warning(
            "ai-tokentrace budget%s%s reached: spent $%.6f of $%.6f%s",
            f" {self.name!r}" if self.name else "",
            who,
            event.spent_usd,
            event.limit_usd,
            "; further calls are refused" if self.mode == "raise" else "",
        )
        if self.on_exceed is not None:
            try:
                self.on_exceed(event)
            except Exception:
                logger.exception("ai-tokentrace: a budget's on_exceed callback raised; ignored")


# -- hooks into the hot path ------------------------------------------------------------------

_global: Budget | None = None
_hooks_lock = threading.Lock()
_hooks_on = False


def install_budget(budget: Budget | None) -> None:
    """Make ``budget`` process-wide (``instrument(budget=...)``); None removes it."""
    global _global
    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"budget must be an ai_tokentrace.Budget, not {type(budget).__name__}")
    from . import _capture

    _global = budget
    _capture.watching_unscoped = budget is not None


def _enable_hooks() -> None:
    global _hooks_on
    with _hooks_lock:
        if _hooks_on:
            return
        from . import _capture

        _capture.pre_call_guards.append(_guard)
        _capture.capture_listeners.append(_listen)
        _hooks_on = True
    # Guards settle spend on the caller's thread: the first guarded call after a finished one
    # must not wait for genai-prices to import.
    from . import _pricing

    _pricing.warm_in_background()


def _budgets(scope: Scope | None) -> list[Budget]:
    """The global budget and every distinct budget on the scope chain."""
    found: list[Budget] = []
    if _global is not None:
        found.append(_global)
    while scope is not None:
        b = scope.budget
        if b is not None and isinstance(b, Budget) and not any(b is f for f in found):
            found.append(b)
        scope = scope.parent
    return found


def _listen(capture: Capture) -> None:
    """Hot path: queue the finished call on each budget that covers it."""
    if _global is None and capture.scope is None:
        return
    for budget in _budgets(capture.scope):
        budget._pending.append(capture)


def _key_for_call(
    budget: Budget, provider: str, model: str | None, scope: Scope | None
) -> str | None:
    per = budget.per
    if per is None:
        return None
    if per == "model":
        return model
    if per == "provider":
        return provider
    if scope is None:
        return None  # records made outside any scope carry no labels either
    labels = scope.labels
    value = labels.name if per == "trace_name" else getattr(labels, per)
    return None if value is None else str(value)


def _guard(provider: str, model: str | None, scope: Scope | None) -> None:
    """Before each counted call: refuse it (raise mode) once a covering budget is spent."""
    try:
        budgets = _budgets(scope) if (_global is not None or scope is not None) else []
    except Exception:
        internal_error("budget.guard")
        return
    for budget in budgets:
        try:
            key = _key_for_call(budget, provider, model, scope)
            budget._check(key)
        except BudgetExceededError:
            raise
        except Exception:
            internal_error("budget.check")
