//! Runtime state that must survive a restart (tasks, OAuth clients and tokens, analytics).
//!
//! One module over sqlx. SQLite (embedded, a file in the data directory) is the default; the
//! queries are plain SQL so a PostgreSQL pool can take its place for several replicas.
//! Migrations live in `migrations/` and are embedded in the binary.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;

/// `(version, description, sql)`, applied in order, each once.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "analytics",
        include_str!("../migrations/0002_analytics.sql"),
    ),
    (3, "tasks", include_str!("../migrations/0003_tasks.sql")),
    (4, "oauth", include_str!("../migrations/0004_oauth.sql")),
    (
        5,
        "analytics rollups",
        include_str!("../migrations/0005_analytics_rollup.sql"),
    ),
];

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/state.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("state.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL never corrupts; a power cut may lose the last commits, which
            // is the right trade for analytics batches and task updates.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for (version, description, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM schema_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_none() {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, description, applied_at)
                     VALUES (?, ?, datetime('now'))",
                )
                .bind(version)
                .bind(description)
                .execute(&mut *tx)
                .await?;
                tracing::info!(version, description, "applied store migration");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// The schema version the store is at.
    pub async fn schema_version(&self) -> anyhow::Result<i64> {
        let (v,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&self.pool)
                .await?;
        Ok(v)
    }

    /// A real round trip to the database, for `/health`.
    pub async fn check(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn backend(&self) -> &'static str {
        "sqlite"
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(
            store.schema_version().await.unwrap(),
            MIGRATIONS.len() as i64
        );
        store.check().await.unwrap();
        store.close().await;
        let again = Store::open(dir.path()).await.unwrap();
        assert_eq!(
            again.schema_version().await.unwrap(),
            MIGRATIONS.len() as i64
        );
    }
}
