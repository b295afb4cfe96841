//! Async tasks: the state of every task in the store (so a result outlives the session that
//! asked for it, and a restart), the status rules of the spec, and timestamps.

use crate::jsonrpc::ErrorObject;
use crate::store::Store;
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub const POLL_INTERVAL_MS: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::InputRequired => "input_required",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// A status by its name (`working`, …); anything else is none.
    pub fn from_name(s: &str) -> Option<Status> {
        [
            Status::Working,
            Status::InputRequired,
            Status::Completed,
            Status::Failed,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    fn parse(s: &str) -> Status {
        Status::from_name(s).unwrap_or(Status::Failed)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }

    /// The spec's lifecycle: working ⇄ input_required, either → a terminal state, never out
    /// of one.
    pub fn may_become(self, next: Status) -> bool {
        match self {
            Status::Working => next != Status::Working,
            Status::InputRequired => next != Status::InputRequired,
            _ => false,
        }
    }
}

/// One task as stored.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub owner: String,
    pub status: Status,
    pub message: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub ttl_ms: Option<i64>,
    pub poll_interval_ms: i64,
    /// The underlying request's outcome, once terminal.
    pub outcome: Option<Result<Box<RawValue>, ErrorObject>>,
    /// The replica running it (as stored; [`create`] sets it).
    pub node: Option<String>,
}

impl Task {
    /// The spec's `Task` object.
    pub fn to_json(&self) -> Value {
        let mut task = json!({
            "taskId": self.id,
            "status": self.status.as_str(),
            "createdAt": iso8601(self.created_ms),
            "lastUpdatedAt": iso8601(self.updated_ms),
            "ttl": self.ttl_ms,
            "pollInterval": self.poll_interval_ms,
        });
        if let Some(m) = &self.message {
            task["statusMessage"] = json!(m);
        }
        task
    }
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    i64,
    Option<String>,
);

fn from_row(r: Row) -> Task {
    let (
        id,
        owner,
        status,
        message,
        created_ms,
        updated_ms,
        ttl_ms,
        poll_interval_ms,
        outcome,
        is_error,
        node,
    ) = r;
    let outcome = outcome.and_then(|text| {
        if is_error != 0 {
            serde_json::from_str::<ErrorObject>(&text).ok().map(Err)
        } else {
            RawValue::from_string(text).ok().map(Ok)
        }
    });
    Task {
        id,
        owner,
        status: Status::parse(&status),
        message,
        created_ms,
        updated_ms,
        ttl_ms,
        poll_interval_ms,
        outcome,
        node,
    }
}

const COLUMNS: &str = "task_id, owner, status, status_message, created_ms, updated_ms, ttl_ms, poll_interval_ms, outcome, outcome_is_error, node_id";

/// How long a task stays its replica's without the replica renewing it.
pub const LEASE_MS: i64 = 30_000;

/// Stores a new task, leased to `node` (the replica that runs it).
pub async fn create(store: &Store, task: &Task, node: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tasks (task_id, owner, status, status_message, created_ms, updated_ms, ttl_ms, poll_interval_ms, node_id, lease_until_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&task.id)
    .bind(&task.owner)
    .bind(task.status.as_str())
    .bind(&task.message)
    .bind(task.created_ms)
    .bind(task.updated_ms)
    .bind(task.ttl_ms)
    .bind(task.poll_interval_ms)
    .bind(node)
    .bind(crate::analytics::now_ms() + LEASE_MS)
    .execute(store.pool())
    .await
    .map(|_| ())
}

/// Renews `node`'s leases on these tasks (those still running); answers the ones that are no
/// longer running (finished, or cancelled through another replica).
pub async fn renew(store: &Store, node: &str, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let until = crate::analytics::now_ms() + LEASE_MS;
    let mut over = Vec::new();
    for id in ids {
        let renewed = sqlx::query(
            "UPDATE tasks SET lease_until_ms = $1
             WHERE task_id = $2 AND node_id = $3 AND status IN ('working', 'input_required')",
        )
        .bind(until)
        .bind(id)
        .bind(node)
        .execute(store.pool())
        .await?;
        if renewed.rows_affected() == 0 {
            over.push(id.clone());
        }
    }
    Ok(over)
}

/// The status of task `id`, whoever owns it (for the replica running it).
pub async fn status(store: &Store, id: &str) -> Result<Option<Status>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM tasks WHERE task_id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|(s,)| Status::parse(&s)))
}

/// The task `id` if `owner` owns it (a foreign task is as absent as a missing one).
pub async fn get(store: &Store, owner: &str, id: &str) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE task_id = $1 AND owner = $2"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(from_row))
}

/// `owner`'s tasks, oldest first, from `offset`.
pub async fn list(
    store: &Store,
    owner: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE owner = $1 ORDER BY created_ms, task_id LIMIT $2 OFFSET $3"
    ))
    .bind(owner)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// A task whoever owns it (for operators: the admin API).
pub async fn find(store: &Store, id: &str) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tasks WHERE task_id = $1"))
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
    Ok(row.map(from_row))
}

/// The newest `limit` tasks of every owner (only those in `status`, when given).
pub async fn recent(
    store: &Store,
    status: Option<Status>,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE ($1 = '' OR status = $1)
         ORDER BY created_ms DESC, task_id LIMIT $2"
    ))
    .bind(status.map_or("", Status::as_str))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Moves a task to `next` if the lifecycle allows it (a terminal task never changes again);
/// returns the task as it now is, or `None` when the move was not allowed.
pub async fn transition(
    store: &Store,
    id: &str,
    next: Status,
    message: Option<&str>,
    outcome: Option<&Result<Box<RawValue>, ErrorObject>>,
) -> Result<Option<Task>, sqlx::Error> {
    // One conditional update: the status may change only from one that allows it, decided by
    // the database under its own write lock, so concurrent transitions cannot both win and
    // readers never turn a write into a conflict. (PostgreSQL, read committed: the loser waits
    // for the winner's row lock, then re-checks `status` on the row the winner wrote.)
    let from: Vec<&str> = [Status::Working, Status::InputRequired]
        .into_iter()
        .filter(|s| s.may_become(next))
        .map(Status::as_str)
        .collect();
    let (text, is_error) = match outcome {
        Some(Ok(v)) => (Some(v.get().to_string()), false),
        Some(Err(e)) => (serde_json::to_string(e).ok(), true),
        None => (None, false),
    };
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE tasks SET status = $1, status_message = $2, updated_ms = $3, outcome = COALESCE($4, outcome),
         outcome_is_error = CASE WHEN $4 IS NULL THEN outcome_is_error ELSE $5 END
         WHERE task_id = $6 AND status IN ($7, $8)
         RETURNING {COLUMNS}"
    ))
    .bind(next.as_str())
    .bind(message)
    .bind(crate::analytics::now_ms())
    .bind(&text)
    .bind(i64::from(is_error))
    .bind(id)
    .bind(from.first().copied().unwrap_or(""))
    .bind(from.get(1).copied().unwrap_or(""))
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(from_row))
}

/// Tasks whose replica is gone (their lease lapsed before `now_ms`, or they predate leases)
/// fail, with that reason: never a task another replica is running. Only tasks created before
/// `created_before` (a director alone on its store fails all its past's work at start, not the
/// tasks it has just created).
pub async fn fail_lapsed(
    store: &Store,
    now_ms: i64,
    created_before: i64,
) -> Result<u64, sqlx::Error> {
    let lost = ErrorObject::internal("the director running this task stopped before it finished");
    let done = sqlx::query(
        "UPDATE tasks SET status = 'failed', status_message = $1, updated_ms = $2, outcome = $3, outcome_is_error = 1
         WHERE status IN ('working', 'input_required') AND (lease_until_ms IS NULL OR lease_until_ms < $4)
           AND created_ms < $5",
    )
    .bind(&lost.message)
    .bind(crate::analytics::now_ms())
    .bind(serde_json::to_string(&lost).unwrap_or_default())
    .bind(now_ms)
    .bind(created_before)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}

pub async fn count_by_status(store: &Store) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status")
        .fetch_all(store.pool())
        .await
}

pub async fn purge_expired(store: &Store) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM tasks WHERE ttl_ms IS NOT NULL AND created_ms + ttl_ms < $1")
            .bind(crate::analytics::now_ms())
            .execute(store.pool())
            .await?;
    Ok(done.rows_affected())
}

/// RFC 3339 UTC timestamp of milliseconds since the epoch.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_764_067_800_123), "2025-11-25T10:50:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn lifecycle() {
        use Status::*;
        assert!(Working.may_become(InputRequired) && InputRequired.may_become(Working));
        assert!(Working.may_become(Completed) && InputRequired.may_become(Cancelled));
        for terminal in [Completed, Failed, Cancelled] {
            for next in [Working, InputRequired, Completed, Failed, Cancelled] {
                assert!(!terminal.may_become(next), "{terminal:?} → {next:?}");
            }
        }
        assert!(!Working.may_become(Working));
    }
}
