//! The configuration the running director uses, changed atomically without a restart.
//!
//! Every change (admin API, `POST /api/config`, reload) goes through [`LiveConfig::update`]:
//! apply to a copy, validate, expand, write the file, then publish. A change that fails any step
//! changes nothing. Subscribers (the upstream pool, sessions) watch the effective configuration.
//!
//! On a store several replicas share (PostgreSQL), the configuration lives in the store instead:
//! the file only bootstraps the first replica; every change is a new version there, written
//! before it is published (two replicas changing at once: one wins, the other gets a conflict),
//! and every replica applies the versions others write within [`FOLLOW`].

use crate::config::{self, ConfigError};
use mcp_director_api::models::Config;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::{Mutex, watch};

/// How often a replica looks for versions others wrote.
pub const FOLLOW: std::time::Duration = std::time::Duration::from_secs(2);

pub struct LiveConfig {
    path: PathBuf,
    /// As written in the file (`${VAR}` unexpanded). The mutex serialises writers.
    raw: Mutex<Config>,
    /// A copy of `raw` for lock-free readers.
    raw_snapshot: RwLock<Arc<Config>>,
    effective: watch::Sender<Arc<Config>>,
    /// The shared store the configuration lives in, once attached (see the module doc).
    store: OnceLock<crate::store::Store>,
    /// The store version `raw` is.
    version: AtomicI64,
    /// Woken when another replica signals a new version (sooner than the next look).
    nudged: tokio::sync::Notify,
}

impl LiveConfig {
    /// Loads `path`; when it does not exist and `create` is set, starts from the embedded
    /// default (the file is written on the first change).
    pub fn open(path: &Path, create: bool) -> Result<Self, ConfigError> {
        let raw = if !path.exists() && create {
            config::embedded_default()
        } else {
            config::load(path)?
        };
        let effective = config::expand(&raw)?;
        Ok(Self {
            path: path.to_path_buf(),
            raw_snapshot: RwLock::new(Arc::new(raw.clone())),
            raw: Mutex::new(raw),
            effective: watch::Sender::new(Arc::new(effective)),
            store: OnceLock::new(),
            version: AtomicI64::new(0),
            nudged: tokio::sync::Notify::new(),
        })
    }

    /// Keeps the configuration in `store` from now on, if several replicas may share it: the
    /// store's latest version replaces the file's, or the file's becomes the first version.
    pub async fn share_through(&self, store: &crate::store::Store) -> Result<(), ConfigError> {
        if !store.shared() {
            return Ok(());
        }
        let mut raw = self.raw.lock().await;
        match latest(store).await? {
            Some((version, text)) => {
                let stored = config::parse(&text, "the store")?;
                self.commit(&mut raw, stored, false)?;
                self.version.store(version, Ordering::Relaxed);
            }
            None => {
                // A replica that lost the race to write version 1 takes the winner's.
                if insert(store, 1, &config::to_toml(&raw)).await.is_err()
                    && let Some((version, text)) = latest(store).await?
                {
                    let stored = config::parse(&text, "the store")?;
                    self.commit(&mut raw, stored, false)?;
                    self.version.store(version, Ordering::Relaxed);
                } else {
                    self.version.store(1, Ordering::Relaxed);
                }
            }
        }
        let _ = self.store.set(store.clone());
        tracing::info!(
            version = self.version.load(Ordering::Relaxed),
            "configuration kept in the store (shared by the replicas)"
        );
        Ok(())
    }

    /// Whether the configuration lives in a shared store (then the file is not followed).
    pub fn shared(&self) -> bool {
        self.store.get().is_some()
    }

    /// A replica signalled a new version: look now.
    pub fn nudge(&self) {
        self.nudged.notify_one();
    }

    /// Applies the versions other replicas write, when signalled and every [`FOLLOW`].
    pub async fn follow_store(&self) {
        let Some(store) = self.store.get() else {
            return;
        };
        loop {
            let _ = tokio::time::timeout(FOLLOW, self.nudged.notified()).await;
            // Compared under the lock: a version this replica is writing meanwhile (whose
            // signal comes back here too) is not applied a second time.
            let mut raw = self.raw.lock().await;
            let newer = match latest(store).await {
                Ok(Some((v, text))) if v > self.version.load(Ordering::Relaxed) => (v, text),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "configuration store unreadable");
                    continue;
                }
            };
            let applied = config::parse(&newer.1, "the store")
                .and_then(|next| self.commit(&mut raw, next, false));
            match applied {
                Ok(()) => {
                    self.version.store(newer.0, Ordering::Relaxed);
                    tracing::info!(
                        version = newer.0,
                        "configuration changed by another replica: applied"
                    )
                }
                Err(e) => {
                    tracing::warn!(version = newer.0, error = %e, "configuration version from the store not valid here; keeping the running one")
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration as written (what `GET /api/config` shows).
    pub fn raw(&self) -> Arc<Config> {
        self.raw_snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The configuration in force, `${VAR}` expanded.
    pub fn effective(&self) -> Arc<Config> {
        self.effective.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.effective.subscribe()
    }

    /// Applies `change` to a copy of the raw configuration; on success validates, writes the
    /// file and publishes it. On any error nothing changes.
    pub async fn update<T, E>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<ConfigError>,
    {
        let mut raw = self.raw.lock().await;
        let mut next = raw.clone();
        let out = change(&mut next)?;
        match self.store.get() {
            Some(store) => {
                // Checked before it is stored: the store only ever holds valid versions.
                config::validate(&next)?;
                config::expand(&next)?;
                let version = self.version.load(Ordering::Relaxed) + 1;
                insert(store, version, &config::to_toml(&next))
                    .await
                    .map_err(|_| {
                        ConfigError::Conflict(
                            "another replica changed the configuration meanwhile: retry".into(),
                        )
                    })?;
                self.version.store(version, Ordering::Relaxed);
                self.commit(&mut raw, next, false)?;
            }
            None => self.commit(&mut raw, next, true)?,
        }
        Ok(out)
    }

    /// Re-reads the file (after an edit by hand), or the store's latest version.
    pub async fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        let mut raw = self.raw.lock().await;
        if let Some(store) = self.store.get() {
            if let Some((version, text)) = latest(store).await? {
                self.commit(&mut raw, config::parse(&text, "the store")?, false)?;
                self.version.store(version, Ordering::Relaxed);
            }
            return Ok(self.raw());
        }
        let next = if self.path.exists() {
            config::load(&self.path)?
        } else {
            config::embedded_default()
        };
        self.commit(&mut raw, next, false)?;
        Ok(self.raw())
    }

    /// Applies hand edits of the file while `settings.watch_config` is on: every `every` the
    /// file's modification time and length are compared, and a changed file that parses to
    /// something other than what runs is reloaded. Our own writes parse to what runs, so they
    /// never trigger a reload; an invalid edit is logged and the last good configuration stays.
    pub async fn follow_file(&self, every: std::time::Duration) {
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.modified().ok(), m.len()))
        };
        let mut applied = stamp(&self.path);
        let mut seen = applied;
        loop {
            tokio::time::sleep(every).await;
            let now = stamp(&self.path);
            // Applied once it has stopped changing for a poll (not halfway through a write);
            // a file that is gone changes nothing.
            let settled = now == seen;
            seen = now;
            if now.is_none() || now == applied || !settled || !self.raw().settings.watch_config {
                continue;
            }
            applied = now;
            let outcome = match config::load(&self.path) {
                Ok(on_disk) if on_disk == *self.raw() => continue,
                Ok(on_disk) => {
                    let mut raw = self.raw.lock().await;
                    self.commit(&mut raw, on_disk, false)
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    tracing::info!(path = %self.path.display(), "configuration file changed: applied")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "configuration file changed but is not valid; keeping the running configuration")
                }
            }
        }
    }

    fn commit(&self, raw: &mut Config, next: Config, write: bool) -> Result<(), ConfigError> {
        config::validate(&next)?;
        let effective = config::expand(&next)?;
        if write {
            config::save(&self.path, &next)?;
        }
        *self.raw_snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next.clone());
        *raw = next;
        self.effective.send_replace(Arc::new(effective));
        Ok(())
    }
}

/// The store's latest configuration version and its TOML.
async fn latest(store: &crate::store::Store) -> Result<Option<(i64, String)>, ConfigError> {
    sqlx::query_as("SELECT version, toml FROM config_versions ORDER BY version DESC LIMIT 1")
        .fetch_optional(store.pool())
        .await
        .map_err(|e| ConfigError::Store(e.to_string()))
}

/// Writes version `version`; fails if it exists (another replica wrote it first).
async fn insert(store: &crate::store::Store, version: i64, toml: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO config_versions (version, toml, written_ms) VALUES ($1, $2, $3)")
        .bind(version)
        .bind(toml)
        .bind(crate::analytics::now_ms())
        .execute(store.pool())
        .await?;
    crate::cluster::signals::send(store, crate::cluster::signals::Signal::Config).await;
    Ok(())
}
