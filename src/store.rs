//! Runtime state that must survive a restart (tasks, OAuth clients and tokens, analytics).
//!
//! One type over sqlx's `Any` driver, on SQLite (embedded, a file in the data directory: the
//! default) or PostgreSQL (what several replicas share), chosen by the URL's scheme. Every query
//! elsewhere is written once, in the SQL both accept: `$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, integers bound and read as `i64`, flags as 0/1 (`Any` reads a SQLite integer
//! as no `bool`). What differs between the two lives in this module only: the migrations
//! (`migrations/sqlite/`, `migrations/postgres/`, embedded in the binary) and connection set-up.

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};
use std::path::Path;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!(
                "the store URL `{}` is neither sqlite://… nor postgres://…",
                redacted(url)
            )
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

struct Migration {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $description:literal, $file:literal) => {
        Migration {
            version: $version,
            description: $description,
            sqlite: include_str!(concat!("../migrations/sqlite/", $file)),
            postgres: include_str!(concat!("../migrations/postgres/", $file)),
        }
    };
}

/// Applied in order, each once. A version means the same schema on both databases.
const MIGRATIONS: &[Migration] = &[
    migration!(1, "init", "0001_init.sql"),
    migration!(2, "analytics", "0002_analytics.sql"),
    migration!(3, "tasks", "0003_tasks.sql"),
    migration!(4, "oauth", "0004_oauth.sql"),
    migration!(5, "analytics rollups", "0005_analytics_rollup.sql"),
    migration!(6, "task leases and nodes", "0006_leases.sql"),
    migration!(7, "configuration versions", "0007_config_versions.sql"),
    migration!(8, "console sessions", "0008_console_sessions.sql"),
    migration!(9, "console sign-ins", "0009_console_sign_ins.sql"),
];

/// Any value: it only has to be the same in every replica, and unlikely to be another
/// application's on a shared database.
const MIGRATION_LOCK: i64 = 0x6d63_7064_0001;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Kept for connections outside the pool (the replicas' signal listener); never printed.
    url: std::sync::Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// `state.db` in `data_dir`: the store when none is configured.
    pub fn default_url(data_dir: &Path) -> anyhow::Result<String> {
        let file = std::path::absolute(data_dir.join("state.db"))?;
        // A file URL percent-encodes what would end the path (`?`, `#`, `%`, spaces); sqlx
        // decodes it again.
        let file = url::Url::from_file_path(&file)
            .map_err(|()| anyhow::anyhow!("{} cannot be a store path", file.display()))?;
        Ok(format!("sqlite://{}", file.path()))
    }

    /// Connects to `url` (`sqlite://…`, created if missing, or `postgres://…`) and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let backend = Backend::of(url)?;
        let opened = Self::connect(url, backend)
            .await
            .with_context(|| format!("cannot open the store at {}", redacted(url)))?;
        tracing::info!(backend = backend.as_str(), url = %redacted(url), "store open");
        Ok(opened)
    }

    async fn connect(url: &str, backend: Backend) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            // SQLite has one writer however many connections wait; PostgreSQL's connections
            // are shared by every replica, so each takes a few.
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .after_connect(move |conn, _| Box::pin(set_up(conn, backend)))
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            backend,
            url: url.into(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A transaction that, on PostgreSQL, holds the migration lock until it ends: replicas
    /// starting together apply each migration once.
    async fn migration_tx(&self) -> sqlx::Result<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)::text")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.migration_tx().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        for m in MIGRATIONS {
            let mut tx = self.migration_tx().await?;
            let done: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_none() {
                let sql = match self.backend {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                };
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, description, applied_at)
                     VALUES ($1, $2, $3)",
                )
                .bind(m.version)
                .bind(m.description)
                .bind(crate::tasks::iso8601(crate::analytics::now_ms()))
                .execute(&mut *tx)
                .await?;
                tracing::info!(
                    version = m.version,
                    description = m.description,
                    "applied store migration"
                );
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

    /// The number of migrations this build knows; a store opened by it is at this version.
    pub fn latest_version() -> i64 {
        MIGRATIONS.last().map_or(0, |m| m.version)
    }

    /// A real round trip to the database, for `/health`.
    pub async fn check(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL it was opened with (holds the password: for connecting, never for a log).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> &'static str {
        self.backend.as_str()
    }

    /// Whether several directors may share this store (PostgreSQL). An SQLite file belongs to
    /// one director at a time: what its tasks were doing died with the previous process.
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn set_up(conn: &mut sqlx::AnyConnection, backend: Backend) -> sqlx::Result<()> {
    if backend == Backend::Sqlite {
        // WAL with NORMAL never corrupts; a power cut may lose the last commits, which is the
        // right trade for analytics batches and task updates. (`Any` takes only a URL, which
        // cannot say this.)
        sqlx::Executor::execute(
            conn,
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
        )
        .await?;
    }
    Ok(())
}

/// `url` with its directory created and `mode=rwc` (create if missing) unless it names a mode.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let file = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    if let Some(dir) = file.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "mode") {
        return Ok(url.to_string());
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}mode=rwc"))
}

/// `url` fit for logs and error messages: the password replaced.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Unparsed, a password cannot be told from the rest.
        Err(_) => "<unparseable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/director"),
            "postgres://app:***@db:5432/director"
        );
        assert_eq!(redacted("postgres://db/x"), "postgres://db/x");
        assert!(!redacted("postgres://app:s3cret@[db/x").contains("s3cret"));
        assert!(Backend::of("mysql://x").is_err());
        let dir = tempfile::tempdir().unwrap();
        let weird = dir.path().join("a b#c?d%e");
        let url = Store::default_url(&weird).unwrap();
        let file = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap();
        assert_eq!(file.get_filename(), weird.join("state.db"));
        assert!(sqlite_url(&url).unwrap().ends_with("?mode=rwc"));
        assert!(weird.is_dir());
        assert_eq!(
            sqlite_url("sqlite::memory:?mode=memory").unwrap(),
            "sqlite::memory:?mode=memory"
        );
    }

    #[tokio::test]
    async fn migrations_apply_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = Store::default_url(&dir.path().join("nested")).unwrap();
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        assert_eq!(
            store.schema_version().await.unwrap(),
            Store::latest_version()
        );
        store.check().await.unwrap();
        store.close().await;
        let again = Store::open(&url).await.unwrap();
        assert_eq!(
            again.schema_version().await.unwrap(),
            Store::latest_version()
        );
    }
}
