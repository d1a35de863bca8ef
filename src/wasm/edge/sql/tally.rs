//! The log's summary and filters over the SQL store: the counters kept per hour (`tally`) and
//! the `WHERE` clause of a log read, each the SQL twin of [`crate::edge::deliveries`]'s rule.

use super::{num, SqlStore};
use crate::edge::deliveries::{DeliveryQuery, Tally, TallyPlan, HOUR_MS, MAX_SUMMARY_ROWS};
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;

/// Where a summary's counts come from: the counters or the jobs, as SQL expressions.
pub(super) struct Source<'a> {
    /// `table WHERE …`.
    pub(super) filter: String,
    pub(super) bindings: Vec<JsValue>,
    /// The close time in ms (a counter's: its hour's start).
    pub(super) closed_ms: &'a str,
    /// How many jobs a group holds.
    pub(super) count: &'a str,
    pub(super) state: &'a str,
    /// NULL for none, as for `agent`.
    pub(super) reason: &'a str,
    pub(super) agent: &'a str,
}

impl SqlStore {
    /// The summary of `query` ([`crate::edge::Store::tally`]).
    pub(super) fn summary(&self, query: &DeliveryQuery) -> Result<Tally, String> {
        // Whole hours from the counters, the ragged ends of the window (at most an hour each)
        // from `jobs_closed`: never every job.
        let plan = TallyPlan::of(query);
        let mut tally = Tally::default();
        if let Some((first, last)) = plan.hours {
            let mut clauses = vec!["1".to_owned()];
            let mut bindings = Vec::new();
            for (clause, value) in [
                ("hour >= ?", first.map(num)),
                ("hour < ?", last.map(num)),
                ("reason = ?", query.reason.as_deref().map(JsValue::from)),
                ("agent = ?", query.agent.as_deref().map(JsValue::from)),
            ] {
                if let Some(value) = value {
                    clauses.push(clause.to_owned());
                    bindings.push(value);
                }
            }
            let source = Source {
                filter: format!("tally WHERE {}", clauses.join(" AND ")),
                bindings,
                closed_ms: "(hour * 3600000)",
                count: "SUM(n)",
                state: "state",
                reason: "NULLIF(reason, '')",
                agent: "NULLIF(agent, '')",
            };
            self.count(query, &source, &mut tally)?;
        }
        for window in &plan.scans {
            let (filter, bindings) = log_filter(&TallyPlan::scan_query(query, *window), false);
            let source = Source {
                filter: format!("jobs WHERE {filter}"),
                bindings,
                closed_ms: "closed_ms",
                count: "COUNT(*)",
                state: SHOWN_STATE,
                reason: REASON,
                agent: AGENT,
            };
            self.count(query, &source, &mut tally)?;
        }
        Ok(tally)
    }

    /// Adds `source`'s counts to `tally`: three grouped reads, each a few rows, per (state,
    /// day), per reason and per agent.
    pub(super) fn count(
        &self,
        query: &DeliveryQuery,
        source: &Source,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let offset = num(query.offset_ms());
        // Whole days, rounded down (SQLite's `/` rounds toward zero); the offset is cast, as a
        // JavaScript number may be bound as a real.
        let local = format!("({} + CAST(? AS INTEGER))", source.closed_ms);
        let day = format!("({local} / {DAY_MS} - ({local} % {DAY_MS} < 0))");
        let (filter, count) = (&source.filter, source.count);
        let by_day = format!(
            "SELECT {} AS state, {day} AS day, {count} AS n FROM {filter} GROUP BY 1, 2",
            source.state
        );
        let day_bindings = [vec![offset.clone(), offset], source.bindings.clone()].concat();
        for row in self.rows(&by_day, day_bindings)? {
            let state = Self::column(&row, "state").as_string().unwrap_or_default();
            let day = Self::column(&row, "day").as_f64().unwrap_or(0.0) as i64;
            tally.add_state(&state, day, count_of(&row));
        }
        for (expression, add) in [
            (
                source.reason,
                Tally::add_reason as fn(&mut Tally, &str, u64),
            ),
            (source.agent, Tally::add_agent),
        ] {
            let top = format!(
                "SELECT {expression} AS name, {count} AS n FROM {filter} AND {expression} IS NOT NULL GROUP BY 1 ORDER BY n DESC, name LIMIT {MAX_SUMMARY_ROWS}"
            );
            for row in self.rows(&top, source.bindings.clone())? {
                if let Some(name) = Self::column(&row, "name").as_string() {
                    add(tally, &name, count_of(&row));
                }
            }
        }
        Ok(())
    }

    /// Adds `n` (negative: takes) to one counter; a counter at zero goes.
    pub(super) fn bump(
        &self,
        (hour, state, reason, agent): &Counter,
        n: i64,
    ) -> Result<(), String> {
        self.bump_key(*hour, state, reason, agent, n)
    }

    /// [`Self::bump`] by the counter's parts.
    pub(super) fn bump_key(
        &self,
        hour: i64,
        state: &str,
        reason: &str,
        agent: &str,
        n: i64,
    ) -> Result<(), String> {
        let key = || -> Vec<JsValue> { vec![num(hour), state.into(), reason.into(), agent.into()] };
        self.run(&self.hot.bump, [key(), vec![num(n)]].concat())?;
        if n < 0 {
            self.rows(
                "DELETE FROM tally WHERE hour = ? AND state = ? AND reason = ? AND agent = ? AND n <= 0",
                key(),
            )?;
        }
        Ok(())
    }
}

impl SqlStore {
    /// Takes deleted jobs (their [`tally_key`] rows) from their counters: each counter down by
    /// the jobs deleted from it, once.
    pub(super) fn uncount(&self, gone: &[JsValue]) -> Result<(), String> {
        let mut down: BTreeMap<Counter, i64> = BTreeMap::new();
        for row in gone {
            *down.entry(counter(row)).or_default() += 1;
        }
        for (key, n) in &down {
            self.bump(key, -n)?;
        }
        Ok(())
    }
}

/// One counter's key, as [`tally_key`] gives it: hour, state, reason, agent.
pub(super) type Counter = (i64, String, String, String);

pub(super) fn counter(row: &JsValue) -> Counter {
    let text = |name| SqlStore::column(row, name).as_string().unwrap_or_default();
    let hour = SqlStore::column(row, "hour").as_f64().unwrap_or(0.0) as i64;
    (hour, text("state"), text("reason"), text("agent"))
}

/// The columns of a job's counter ([`crate::edge::deliveries::TallyKey::of`] in SQL): the
/// hour of its close (rounded down), the state shown, the reason and agent (empty for none).
pub(super) fn tally_key() -> String {
    format!(
        "(closed_ms / {HOUR_MS} - (closed_ms % {HOUR_MS} < 0)) AS hour, {SHOWN_STATE} AS state, COALESCE({REASON}, '') AS reason, COALESCE({AGENT}, '') AS agent"
    )
}

/// The state the log shows ([`crate::edge::deliveries::shown_state`]): a `sending` lease is
/// `retrying` after a failed attempt, else `scheduled`.
pub(super) const SHOWN_STATE: &str = "(CASE state WHEN 'sending' THEN (CASE WHEN json_extract(job, '$.attempts') > 1 THEN 'retrying' ELSE 'scheduled' END) ELSE state END)";
pub(super) const REASON: &str = "json_extract(job, '$.reason')";
/// The request's agent, in ASCII lower case (SQLite's `lower` folds ASCII only, as
/// [`DeliveryQuery`] does).
pub(super) const AGENT: &str = "lower(json_extract(job, '$.request.employee.email'))";
pub(super) const DAY_MS: i64 = 86_400_000;

/// The `WHERE` clause of [`DeliveryQuery::matches`] (`page`) or of
/// [`DeliveryQuery::in_summary`], and its bindings: every value is bound, none is spliced in.
pub(super) fn log_filter(query: &DeliveryQuery, page: bool) -> (String, Vec<JsValue>) {
    let mut clauses = vec!["1".to_owned()];
    let mut bindings: Vec<JsValue> = Vec::new();
    if let Some(from) = query.from_ms {
        clauses.push("closed_ms >= ?".to_owned());
        bindings.push(num(from));
    }
    if let Some(to) = query.to_ms {
        clauses.push("closed_ms < ?".to_owned());
        bindings.push(num(to));
    }
    if let Some(id) = &query.conversation_id {
        clauses.push("conversation_id = ?".to_owned());
        bindings.push(id.as_str().into());
    }
    if let Some(reason) = &query.reason {
        clauses.push(format!("{REASON} = ?"));
        bindings.push(reason.as_str().into());
    }
    if let Some(agent) = &query.agent {
        clauses.push(format!("{AGENT} = ?"));
        bindings.push(agent.to_ascii_lowercase().into());
    }
    if page && !query.states.is_empty() {
        let marks = vec!["?"; query.states.len()].join(", ");
        clauses.push(format!("{SHOWN_STATE} IN ({marks})"));
        bindings.extend(query.states.iter().map(|s| JsValue::from(s.as_str())));
    }
    if let (true, Some(after)) = (page, &query.after) {
        // `closed_ms <= ?` follows from the rest; said outright, it is where the walk down
        // `jobs_closed` starts, whatever the planner makes of the `OR`.
        clauses.push(
            "closed_ms <= ? AND (closed_ms < ? OR (closed_ms = ? AND conversation_id < ?))"
                .to_owned(),
        );
        let at = num(after.closed_at_ms);
        bindings.extend([
            at.clone(),
            at.clone(),
            at,
            after.conversation_id.as_str().into(),
        ]);
    }
    (clauses.join(" AND "), bindings)
}

/// A grouped row's count (`n`).
pub(super) fn count_of(row: &JsValue) -> u64 {
    SqlStore::column(row, "n").as_f64().unwrap_or(0.0) as u64
}
