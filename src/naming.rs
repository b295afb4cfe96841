//! Exposed names: how an upstream's tool/prompt name becomes the name a client sees, and back.
//!
//! `prefix` (the default): `<prefix>/<name>`, where the prefix is the server's name unless
//! configured; `""` exposes the name unchanged. `compat`: `<prefix>_<name>` reduced to
//! `^[a-zA-Z0-9_-]{1,64}$` for clients that demand it, with a hash suffix when reduction would
//! truncate or collide. Resolution goes through [`NameTable`], built from the same function, so
//! `resolve(expose(x)) == x` for every entry that won its name.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Prefix,
    Compat,
}

/// The exposed name of `name` from a server with `prefix`, before collision handling.
pub fn expose(strategy: Strategy, prefix: &str, name: &str) -> String {
    match strategy {
        Strategy::Prefix if prefix.is_empty() => name.to_string(),
        Strategy::Prefix => format!("{prefix}/{name}"),
        Strategy::Compat => {
            let joined = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}_{name}")
            };
            let clean: String = joined
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean.len() <= 64 && !clean.is_empty() && clean == joined {
                clean
            } else {
                hashed(&clean, prefix, name)
            }
        }
    }
}

/// A compat name that cannot collide: at most 55 characters of the readable form plus
/// `_` and 8 hex digits of SHA-256 over the original pair.
fn hashed(clean: &str, prefix: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{prefix}\0{name}").as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let head: String = clean.chars().take(55).collect();
    format!("{head}_{hex}")
}

/// The exposed names of one kind (tools or prompts) across all upstreams.
#[derive(Debug, Default, Clone)]
pub struct NameTable {
    forward: BTreeMap<(String, String), String>,
    reverse: BTreeMap<String, (String, String)>,
    /// `(exposed, losing server, its name)` for every collision, for status and logs.
    pub collisions: Vec<(String, String, String)>,
}

impl NameTable {
    /// `entries` are `(server, prefix, name)`; sorted by server so collisions resolve the same
    /// way every time: the first server (by name) keeps a contested name, in `compat` the
    /// others get a hashed one, in `prefix` they are left out and reported.
    pub fn build(
        strategy: Strategy,
        entries: impl IntoIterator<Item = (String, String, String)>,
    ) -> Self {
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort();
        let mut table = NameTable::default();
        for (server, prefix, name) in entries {
            let mut exposed = expose(strategy, &prefix, &name);
            if table.reverse.contains_key(&exposed) && strategy == Strategy::Compat {
                exposed = hashed(&exposed, &format!("{server}\0{prefix}"), &name);
            }
            if table.reverse.contains_key(&exposed) {
                table.collisions.push((exposed, server, name));
                continue;
            }
            table
                .forward
                .insert((server.clone(), name.clone()), exposed.clone());
            table.reverse.insert(exposed, (server, name));
        }
        table
    }

    pub fn exposed(&self, server: &str, name: &str) -> Option<&str> {
        self.forward
            .get(&(server.to_string(), name.to_string()))
            .map(String::as_str)
    }

    /// `(server, upstream name)` of an exposed name.
    pub fn resolve(&self, exposed: &str) -> Option<(&str, &str)> {
        self.reverse
            .get(exposed)
            .map(|(s, n)| (s.as_str(), n.as_str()))
    }

    pub fn len(&self) -> usize {
        self.forward.len()
    }

    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{NameTable, Strategy, expose};
    use proptest::prelude::{Just, any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest};

    #[test]
    fn prefix_and_unprefixed() {
        assert_eq!(
            expose(Strategy::Prefix, "filesystem", "read_file"),
            "filesystem/read_file"
        );
        assert_eq!(expose(Strategy::Prefix, "", "read_file"), "read_file");
        assert_eq!(expose(Strategy::Compat, "fs", "read_file"), "fs_read_file");
        let long = "x".repeat(80);
        let c = expose(Strategy::Compat, "fs", &long);
        assert_eq!(c.len(), 64);
    }

    #[test]
    fn collisions_are_reported_not_fatal() {
        let t = NameTable::build(
            Strategy::Prefix,
            [
                ("b".into(), "".into(), "echo".into()),
                ("a".into(), "".into(), "echo".into()),
            ],
        );
        assert_eq!(t.resolve("echo"), Some(("a", "echo")));
        assert_eq!(
            t.collisions,
            vec![("echo".into(), "b".into(), "echo".into())]
        );
    }

    fn tool_name() -> impl proptest::strategy::Strategy<Value = String> {
        "[A-Za-z0-9_.\\-/]{1,70}"
    }

    proptest! {
        /// Every name that is exposed resolves back to exactly its origin; compat names obey
        /// the strict pattern; nothing is lost except reported collisions.
        #[test]
        fn resolve_inverts_expose(
            entries in prop::collection::vec(
                ("[a-z]{1,3}", prop_oneof![Just(None), Just(Some(String::new()))], tool_name()),
                0..30,
            ),
            compat in any::<bool>(),
        ) {
            let strategy = if compat { Strategy::Compat } else { Strategy::Prefix };
            let entries: Vec<(String, String, String)> = entries
                .into_iter()
                .map(|(s, p, n)| (s.clone(), p.unwrap_or(s), n))
                .collect();
            let table = NameTable::build(strategy, entries.clone());
            let mut unique = entries.clone();
            unique.sort();
            unique.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
            prop_assert_eq!(table.len() + table.collisions.len(), unique.len());
            for (server, _, name) in &unique {
                if let Some(exposed) = table.exposed(server, name) {
                    prop_assert_eq!(table.resolve(exposed), Some((server.as_str(), name.as_str())));
                    if compat {
                        prop_assert!(exposed.len() <= 64 && !exposed.is_empty());
                        prop_assert!(exposed.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
                    }
                }
            }
            if compat {
                prop_assert!(table.collisions.is_empty(), "compat never drops a name");
            }
        }
    }
}
