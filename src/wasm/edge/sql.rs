//! [`Store`] over a Durable Object's SQL storage: the org's jobs, its cache and its record.

use super::js_error;
use crate::edge::audit::AuditEntry;
use crate::edge::deliveries::{DeliveryQuery, Tally, TallyKey};
use crate::edge::job::Job;
use crate::edge::retention::Mark;
use crate::edge::trust::{HeldClose, MAX_HELD};
use crate::edge::{OrgRecord, Store};
use js_sys::{Array, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

mod tally;
use tally::{counter, log_filter, tally_key};

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage.sql` of a Durable Object.
    pub type SqlStorage;
    /// The database's size in bytes, as the platform counts it against the object's limit.
    #[wasm_bindgen(method, getter, js_name = databaseSize)]
    fn database_size(this: &SqlStorage) -> f64;
    #[wasm_bindgen(method, catch, variadic)]
    fn exec(this: &SqlStorage, query: &str, bindings: Box<[JsValue]>)
        -> Result<SqlCursor, JsValue>;
    /// [`exec`] with the query already a JavaScript string (made once: see [`Hot`]).
    #[wasm_bindgen(method, catch, variadic, js_name = exec)]
    fn exec_js(
        this: &SqlStorage,
        query: &js_sys::JsString,
        bindings: Box<[JsValue]>,
    ) -> Result<SqlCursor, JsValue>;
    type SqlCursor;
    #[wasm_bindgen(method, js_name = toArray)]
    fn to_array(this: &SqlCursor) -> Array;
    #[wasm_bindgen(method, getter, js_name = rowsWritten)]
    fn rows_written(this: &SqlCursor) -> f64;
}

/// The org's jobs in SQLite: indexed columns for the queries, the job itself as JSON. The org's
/// record is also kept in memory: the Durable Object is its only writer.
pub struct SqlStore {
    sql: SqlStorage,
    org: RefCell<Option<OrgRecord>>,
    hot: Hot,
}

/// The statements every close runs, as JavaScript strings made once per Durable Object: a
/// query crossing from Rust is otherwise decoded into a new string on every call.
struct Hot {
    /// [`Store::insert_new`]'s INSERT.
    insert_new: js_sys::JsString,
    /// [`SqlStore::bump`]'s upsert of a counter.
    bump: js_sys::JsString,
}

/// A new job, written only when the conversation has none (the cursor's `rowsWritten` says).
const INSERT_NEW: &str = "INSERT INTO jobs (conversation_id, state, due_ms, updated_ms, job, closed_ms, followed_ms, unwritten_ms, customer_id_key, customer_email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO NOTHING";

/// Adds to one counter ([`SqlStore::bump`]).
const BUMP: &str = "INSERT INTO tally (hour, state, reason, agent, n) VALUES (?, ?, ?, ?, ?) ON CONFLICT (hour, state, reason, agent) DO UPDATE SET n = n + excluded.n";

/// The tables, as a new Durable Object creates them. `closed_ms` is the job's close time
/// (`closedAtMs` of its JSON), kept as a column so the delivery log reads it from `jobs_closed`.
const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS jobs (conversation_id TEXT PRIMARY KEY, state TEXT NOT NULL, due_ms INTEGER, updated_ms INTEGER NOT NULL, job TEXT NOT NULL, closed_ms INTEGER, followed_ms INTEGER, unwritten_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
    // One row: the org's sealed settings and the link's state (no key is ever stored readable).
    "CREATE TABLE IF NOT EXISTS org (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL)",
    // Closes held until Kustomer vouches for an app secret: one per conversation, no settings.
    "CREATE TABLE IF NOT EXISTS held (conversation_id TEXT PRIMARY KEY, closed_ms INTEGER NOT NULL, event_id TEXT, held_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS held_at ON held (held_ms)",
    // The audit list: newest last by id, at most `audit::MAX_AUDIT` rows, a year at most.
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, entry TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_at ON audit (at_ms)",
];

/// The forget index's columns ([`crate::edge::forget::CustomerKeys`]: keyed digests, as text),
/// added as a new table has them, and their partial indexes: a forget is two index seeks.
const CUSTOMER_COLUMNS: &[&str] = &["customer_id_key", "customer_email_key"];
const CUSTOMER_INDEXES: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS jobs_customer_id ON jobs (customer_id_key) WHERE customer_id_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_customer_email ON jobs (customer_email_key) WHERE customer_email_key IS NOT NULL",
];

/// Columns added since the first version, in order, each as a new table has it too:
/// `closed_ms` (the delivery log's order), `followed_ms` (a sent survey whose outcome is still
/// read back: its send time) and `unwritten_ms` (an outcome waiting to be written onto the
/// conversation: its job's last change).
const ADDED_COLUMNS: &[&str] = &["closed_ms", "followed_ms", "unwritten_ms"];

/// The indexes, once every column is there.
const INDEXES: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_ms) WHERE due_ms IS NOT NULL",
    // No index on `updated_ms` alone any more: an expired lease is found by its `due_ms` (see
    // `due`), and every close would pay for keeping it.
    "DROP INDEX IF EXISTS jobs_updated",
    "CREATE INDEX IF NOT EXISTS jobs_final ON jobs (updated_ms) WHERE due_ms IS NULL",
    // The delivery log's order (newest close first, then id): a page is a walk down this index
    // that stops at its limit, a close-time window a range of it.
    "CREATE INDEX IF NOT EXISTS jobs_closed ON jobs (closed_ms, conversation_id)",
    // Surveys whose outcome is read back, and outcomes to write: few rows, partial indexes.
    "CREATE INDEX IF NOT EXISTS jobs_followed ON jobs (followed_ms) WHERE followed_ms IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_unwritten ON jobs (unwritten_ms) WHERE unwritten_ms IS NOT NULL",
];

/// Fills in `closed_ms` where it is missing: every row of a table that has just been given the
/// column, and any row an older version of the worker wrote since (its INSERTs leave the column
/// out, as during a rollout or a rollback). An index look-up (`jobs_closed`) that finds nothing
/// on every other start.
const FILL_CLOSED: &str =
    "UPDATE jobs SET closed_ms = json_extract(job, '$.closedAtMs') WHERE closed_ms IS NULL";

/// The summary's counters ([`crate::edge::deliveries::TallyKey`]): jobs per UTC hour of close,
/// shown state, reason and agent (empty for none), kept by every write and delete of a job, so
/// that a summary reads counters instead of every job. No zero is kept.
const TALLY_TABLE: &str = "CREATE TABLE tally (hour INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, agent TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, state, reason, agent)) WITHOUT ROWID";

/// A Durable Object from before the counters counts its jobs once, as it starts.
const FILL_TALLY: &str = "INSERT INTO tally (hour, state, reason, agent, n) SELECT hour, state, reason, agent, COUNT(*) FROM (SELECT {KEY} FROM jobs) GROUP BY 1, 2, 3, 4";

impl SqlStore {
    /// The store over `ctx.storage.sql`, its tables created or brought up to date if needed (in
    /// the Durable Object's constructor, before any request; no `await` between the writes, so
    /// they are committed together).
    pub fn new(sql: SqlStorage) -> Result<Self, JsValue> {
        for statement in TABLES {
            sql.exec(statement, Box::new([]))?;
        }
        let columns = sql
            .exec("PRAGMA table_info(jobs)", Box::new([]))?
            .to_array();
        let names: Vec<String> = columns
            .iter()
            .filter_map(|c| Self::column(&c, "name").as_string())
            .collect();
        for added in ADDED_COLUMNS
            .iter()
            .filter(|a| !names.iter().any(|n| n == *a))
        {
            sql.exec(
                &format!("ALTER TABLE jobs ADD COLUMN {added} INTEGER"),
                Box::new([]),
            )?;
        }
        for added in CUSTOMER_COLUMNS
            .iter()
            .filter(|a| !names.iter().any(|n| n == *a))
        {
            sql.exec(
                &format!("ALTER TABLE jobs ADD COLUMN {added} TEXT"),
                Box::new([]),
            )?;
        }
        for statement in INDEXES.iter().chain(CUSTOMER_INDEXES).chain([&FILL_CLOSED]) {
            sql.exec(statement, Box::new([]))?;
        }
        let tally = sql.exec(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tally'",
            Box::new([]),
        )?;
        if tally.to_array().length() == 0 {
            sql.exec(TALLY_TABLE, Box::new([]))?;
            sql.exec(&FILL_TALLY.replace("{KEY}", &tally_key()), Box::new([]))?;
        }
        Ok(Self {
            sql,
            org: RefCell::new(None),
            hot: Hot {
                insert_new: INSERT_NEW.into(),
                bump: BUMP.into(),
            },
        })
    }

    /// Runs one of the [`Hot`] statements (neither returns rows): how many rows it wrote,
    /// indexes included.
    fn run(&self, query: &js_sys::JsString, bindings: Vec<JsValue>) -> Result<f64, String> {
        let cursor = (self.sql)
            .exec_js(query, bindings.into_boxed_slice())
            .map_err(|e| js_error(&e))?;
        Ok(cursor.rows_written())
    }

    fn rows(&self, query: &str, bindings: Vec<JsValue>) -> Result<Vec<JsValue>, String> {
        let cursor = self
            .sql
            .exec(query, bindings.into_boxed_slice())
            .map_err(|e| js_error(&e))?;
        Ok(cursor.to_array().to_vec())
    }

    /// The one value (`least`) of a `MIN(…)` query: `None` on an empty table.
    fn least(&self, query: &str) -> Result<Option<i64>, String> {
        let rows = self.rows(query, vec![])?;
        let least = rows.first().and_then(|r| Self::column(r, "least").as_f64());
        Ok(least.map(|ms| ms as i64))
    }

    fn column(row: &JsValue, name: &str) -> JsValue {
        Reflect::get(row, &name.into()).unwrap_or(JsValue::NULL)
    }

    /// A job's columns, in the order the INSERTs name them.
    fn job_row(job: &Job) -> Result<Vec<JsValue>, String> {
        let text = serde_json::to_string(job).map_err(|e| e.to_string())?;
        Ok(vec![
            job.conversation_id.as_str().into(),
            job.state.as_str().into(),
            job.due_ms.map_or(JsValue::NULL, num),
            num(job.updated_ms),
            text.into(),
            num(job.closed_at_ms),
            job.followed_since().map_or(JsValue::NULL, num),
            if job.outcome_unwritten() {
                num(job.updated_ms)
            } else {
                JsValue::NULL
            },
            key(job.customer.as_ref().and_then(|c| c.id.as_deref())),
            key(job.customer.as_ref().and_then(|c| c.email.as_deref())),
        ])
    }

    fn jobs(&self, query: &str, bindings: Vec<JsValue>) -> Result<Vec<Job>, String> {
        self.rows(query, bindings)?
            .iter()
            .map(|row| {
                let text = Self::column(row, "job").as_string().unwrap_or_default();
                serde_json::from_str(&text).map_err(|e| format!("a stored job cannot be read: {e}"))
            })
            .collect()
    }
}

/// Held closes from their rows.
fn held_rows(rows: &[JsValue]) -> Vec<HeldClose> {
    let column = SqlStore::column;
    rows.iter()
        .filter_map(|r| {
            Some(HeldClose {
                conversation_id: column(r, "conversation_id").as_string()?,
                closed_at_ms: column(r, "closed_ms").as_f64()? as i64,
                event_id: column(r, "event_id").as_string(),
                held_ms: column(r, "held_ms").as_f64()? as i64,
            })
        })
        .collect()
}

/// A forget-index column's value: the digest, or NULL.
fn key(digest: Option<&str>) -> JsValue {
    digest.map_or(JsValue::NULL, JsValue::from)
}

pub(super) fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64) // milliseconds since 1970 are far below 2^53
}

impl Store for SqlStore {
    fn get(&self, conversation_id: &str) -> Result<Option<Job>, String> {
        Ok(self
            .jobs(
                "SELECT job FROM jobs WHERE conversation_id = ?",
                vec![conversation_id.into()],
            )?
            .pop())
    }

    fn put(&self, job: &Job) -> Result<(), String> {
        // The counter the replaced row counted in, then the new row's (`RETURNING`): both as
        // SQL sees them, so the counters and the rows never disagree.
        let key = tally_key();
        let old = self.rows(
            &format!("SELECT {key} FROM jobs WHERE conversation_id = ?"),
            vec![job.conversation_id.as_str().into()],
        )?;
        let new = self.rows(
            &format!("INSERT OR REPLACE INTO jobs (conversation_id, state, due_ms, updated_ms, job, closed_ms, followed_ms, unwritten_ms, customer_id_key, customer_email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {key}"),
            Self::job_row(job)?,
        )?;
        let (old, new) = (old.first().map(counter), new.first().map(counter));
        if old != new {
            if let Some(old) = old {
                self.bump(&old, -1)?;
            }
            if let Some(new) = new {
                self.bump(&new, 1)?;
            }
        }
        Ok(())
    }

    fn insert_new(&self, job: &Job) -> Result<bool, String> {
        // Nothing written when the conversation has a job. Else the new row's counter is the
        // job's own ([`TallyKey::of`], what `tally_key` reads from that row), without SQLite
        // parsing the job's JSON back.
        if self.run(&self.hot.insert_new, Self::job_row(job)?)? == 0.0 {
            return Ok(false);
        }
        let key = TallyKey::of(job);
        self.bump_key(key.hour, key.state, &key.reason, &key.agent, 1)?;
        Ok(true)
    }

    fn due(&self, now_ms: i64, _lease_before_ms: i64, limit: usize) -> Result<Vec<Job>, String> {
        // A lease's expiry is its job's `due_ms` (taken at `updated_ms + lease + 1`), so "leased
        // before `lease_before_ms`" is "due by now": one range of `jobs_due` answers both.
        self.jobs(
            "SELECT job FROM jobs WHERE state IN ('scheduled', 'retrying', 'sending') AND due_ms <= ? ORDER BY due_ms LIMIT ?",
            vec![num(now_ms), num(limit as i64)],
        )
    }

    fn next_due(&self) -> Result<Option<i64>, String> {
        // `due_ms IS NOT NULL` lets SQLite answer from the partial index `jobs_due` instead of
        // reading every row (measured: 4.9 ms → 0.008 ms with 10,000 jobs, on every schedule).
        self.least(
            "SELECT MIN(due_ms) AS least FROM jobs WHERE due_ms IS NOT NULL AND state IN ('scheduled', 'retrying', 'sending')",
        )
    }

    fn deliveries(&self, query: &DeliveryQuery, limit: usize) -> Result<Vec<Job>, String> {
        // In the order of `jobs_closed`, read backwards: SQLite walks the index from the newest
        // close (or from the cursor) and stops at the limit, with no sort.
        let (mut sql, mut bindings) = log_filter(query, true);
        sql.push_str(" ORDER BY closed_ms DESC, conversation_id DESC LIMIT ?");
        bindings.push(num(limit as i64));
        self.jobs(&format!("SELECT job FROM jobs WHERE {sql}"), bindings)
    }

    fn tally(&self, query: &DeliveryQuery) -> Result<Tally, String> {
        self.summary(query)
    }

    fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<String>, String> {
        let rows = self.rows(
            "SELECT value FROM cache WHERE key = ? AND expires_ms > ?",
            vec![key.into(), num(now_ms)],
        )?;
        Ok(rows
            .first()
            .and_then(|r| Self::column(r, "value").as_string()))
    }

    fn cache_put(&self, key: &str, value: &str, expires_ms: i64) -> Result<(), String> {
        self.rows(
            "INSERT OR REPLACE INTO cache (key, value, expires_ms) VALUES (?, ?, ?)",
            vec![key.into(), value.into(), num(expires_ms)],
        )
        .map(drop)
    }

    fn org(&self) -> Result<OrgRecord, String> {
        if let Some(record) = self.org.borrow().as_ref() {
            return Ok(record.clone());
        }
        let rows = self.rows("SELECT record FROM org WHERE id = 1", vec![])?;
        let record = match rows
            .first()
            .and_then(|r| Self::column(r, "record").as_string())
        {
            None => OrgRecord::default(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| format!("the org's record cannot be read: {e}"))?,
        };
        *self.org.borrow_mut() = Some(record.clone());
        Ok(record)
    }

    fn put_org(&self, record: &OrgRecord) -> Result<(), String> {
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        // Forgotten first: if the write fails, the next read goes to storage.
        *self.org.borrow_mut() = None;
        self.rows(
            "INSERT OR REPLACE INTO org (id, record) VALUES (1, ?)",
            vec![text.into()],
        )?;
        *self.org.borrow_mut() = Some(record.clone());
        Ok(())
    }

    fn prune(&self, before_ms: i64, now_ms: i64) -> Result<usize, String> {
        let gone = self.rows(
            &format!(
                "DELETE FROM jobs WHERE due_ms IS NULL AND updated_ms <= ? RETURNING {}",
                tally_key()
            ),
            vec![num(before_ms)],
        )?;
        self.uncount(&gone)?;
        self.rows("DELETE FROM cache WHERE expires_ms <= ?", vec![num(now_ms)])?;
        Ok(gone.len())
    }

    fn oldest_final(&self) -> Result<Option<i64>, String> {
        self.least("SELECT MIN(updated_ms) AS least FROM jobs WHERE due_ms IS NULL")
    }

    fn followed(&self, sent_since_ms: i64) -> Result<bool, String> {
        let rows = self.rows(
            "SELECT 1 FROM jobs WHERE followed_ms IS NOT NULL AND followed_ms >= ? LIMIT 1",
            vec![num(sent_since_ms)],
        )?;
        Ok(!rows.is_empty())
    }

    fn hold(&self, close: &HeldClose) -> Result<bool, String> {
        let held = self.rows(
            "SELECT closed_ms FROM held WHERE conversation_id = ?",
            vec![close.conversation_id.as_str().into()],
        )?;
        match held.first().map(|r| Self::column(r, "closed_ms").as_f64()) {
            Some(Some(closed)) if (closed as i64) > close.closed_at_ms => return Ok(true),
            Some(_) => {}
            None if self.held_count()? >= MAX_HELD => return Ok(false),
            None => {}
        }
        let event = close
            .event_id
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from);
        self.rows(
            "INSERT OR REPLACE INTO held (conversation_id, closed_ms, event_id, held_ms) VALUES (?, ?, ?, ?)",
            vec![close.conversation_id.as_str().into(), num(close.closed_at_ms), event, num(close.held_ms)],
        )?;
        Ok(true)
    }

    fn held_count(&self) -> Result<usize, String> {
        let rows = self.rows("SELECT COUNT(*) AS n FROM held", vec![])?;
        Ok(rows
            .first()
            .map_or(0, |r| Self::column(r, "n").as_f64().unwrap_or(0.0) as usize))
    }

    fn held_oldest(&self) -> Result<Option<i64>, String> {
        self.least("SELECT MIN(held_ms) AS least FROM held")
    }

    fn held_list(&self, limit: usize) -> Result<Vec<HeldClose>, String> {
        let rows = self.rows(
            "SELECT conversation_id, closed_ms, event_id, held_ms FROM held ORDER BY held_ms, conversation_id LIMIT ?",
            vec![num(limit as i64)],
        )?;
        Ok(held_rows(&rows))
    }

    fn take_held(&self, limit: usize) -> Result<Vec<HeldClose>, String> {
        let rows = self.rows(
            "DELETE FROM held WHERE conversation_id IN (SELECT conversation_id FROM held ORDER BY held_ms, conversation_id LIMIT ?) RETURNING conversation_id, closed_ms, event_id, held_ms",
            vec![num(limit as i64)],
        )?;
        let mut held = held_rows(&rows);
        held.sort_by(|a, b| (a.held_ms, &a.conversation_id).cmp(&(b.held_ms, &b.conversation_id)));
        Ok(held)
    }

    fn expire_held(&self, before_ms: i64) -> Result<usize, String> {
        let gone = self.rows(
            "DELETE FROM held WHERE held_ms <= ? RETURNING conversation_id",
            vec![num(before_ms)],
        )?;
        Ok(gone.len())
    }

    fn customer_jobs(&self, digests: &[String], limit: usize) -> Result<Vec<Job>, String> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        // Two seeks of the partial indexes, their union bounded: never a scan.
        let marks = vec!["?"; digests.len()].join(", ");
        let values = || digests.iter().map(|d| JsValue::from(d.as_str()));
        let bindings = values()
            .chain(values())
            .chain([num(limit as i64)])
            .collect();
        self.jobs(
            &format!("SELECT job FROM jobs WHERE customer_id_key IN ({marks}) UNION SELECT job FROM jobs WHERE customer_email_key IN ({marks}) LIMIT ?"),
            bindings,
        )
    }

    fn audit_add(&self, entry: &AuditEntry, keep_after_ms: i64, max: usize) -> Result<(), String> {
        let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        self.rows(
            "INSERT INTO audit (at_ms, entry) VALUES (?, ?)",
            vec![num(entry.at_ms), text.into()],
        )?;
        self.rows(
            "DELETE FROM audit WHERE at_ms <= ?",
            vec![num(keep_after_ms)],
        )?;
        self.rows(
            "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)",
            vec![num(max as i64)],
        )
        .map(drop)
    }

    fn audit_list(&self, after_ms: i64, limit: usize) -> Result<Vec<AuditEntry>, String> {
        let rows = self.rows(
            "SELECT entry FROM audit WHERE at_ms > ? ORDER BY id DESC LIMIT ?",
            vec![num(after_ms), num(limit as i64)],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| Self::column(r, "entry").as_string())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect())
    }

    fn outcomes_unwritten(&self, limit: usize) -> Result<Vec<Job>, String> {
        self.jobs(
            "SELECT job FROM jobs WHERE unwritten_ms IS NOT NULL ORDER BY unwritten_ms, conversation_id LIMIT ?",
            vec![num(limit as i64)],
        )
    }

    fn database_size(&self) -> Result<u64, String> {
        Ok(self.sql.database_size() as u64)
    }

    fn finished_after(
        &self,
        after: Option<&Mark>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, String> {
        // A range of `jobs_final` (finished jobs by last change) from the mark: `updated_ms >= ?`
        // said outright, whatever the planner makes of the `OR`.
        let (from, id) = after.map_or((i64::MIN, ""), |m| {
            (m.updated_ms, m.conversation_id.as_str())
        });
        self.jobs(
            "SELECT job FROM jobs WHERE due_ms IS NULL AND updated_ms >= ? AND updated_ms <= ? AND (updated_ms > ? OR conversation_id > ?) ORDER BY updated_ms, conversation_id LIMIT ?",
            vec![num(from), num(until_ms), num(from), id.into(), num(limit as i64)],
        )
    }

    fn prune_oldest(&self, limit: usize) -> Result<usize, String> {
        // The head of `jobs_final`: finished jobs only, oldest change first.
        let gone = self.rows(
            &format!(
                "DELETE FROM jobs WHERE conversation_id IN (SELECT conversation_id FROM jobs WHERE due_ms IS NULL ORDER BY updated_ms LIMIT ?) RETURNING {}",
                tally_key()
            ),
            vec![num(limit as i64)],
        )?;
        self.uncount(&gone)?;
        Ok(gone.len())
    }
}
