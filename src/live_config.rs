//! The configuration the running director uses, changed atomically without a restart.
//!
//! Every change (admin API, `POST /api/config`, reload) goes through [`LiveConfig::update`]:
//! apply to a copy, validate, expand, write the file, then publish. A change that fails any step
//! changes nothing. Subscribers (the upstream pool, sessions) watch the effective configuration.

use crate::config::{self, ConfigError};
use mcp_director_api::models::Config;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::{Mutex, watch};

pub struct LiveConfig {
    path: PathBuf,
    /// As written in the file (`${VAR}` unexpanded). The mutex serialises writers.
    raw: Mutex<Config>,
    /// A copy of `raw` for lock-free readers.
    raw_snapshot: RwLock<Arc<Config>>,
    effective: watch::Sender<Arc<Config>>,
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
        })
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
        self.commit(&mut raw, next, true)?;
        Ok(out)
    }

    /// Re-reads the file (after an edit by hand).
    pub async fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        let mut raw = self.raw.lock().await;
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
