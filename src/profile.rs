//! Profiles: which servers, tools, prompts and resources a session may see.
//!
//! A profile names the servers it reaches (empty = all) and glob lists over exposed names
//! (`filesystem/read_*`, `*/delete_*`) and resource URIs; `deny` wins over `allow`, and an empty
//! `allow` allows everything. A hidden item behaves exactly like an absent one.
//!
//! Selecting the profile of a new session: the named one (`?profile=`, `--profile`), else the
//! one whose token was presented, else `settings.default_profile`, else no restriction. A profile
//! with `require_token` admits only sessions that present its token (compared by SHA-256 in
//! constant time; only the hash is ever stored).

use crate::secrets;
use mcp_director_api::models::{Config, Profile};

/// `*` matches any run of characters (including `/`), `?` exactly one; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The visibility rules of one session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// `None` = every server.
    pub servers: Option<Vec<String>>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl Filter {
    pub fn from_profile(p: &Profile) -> Self {
        Self {
            servers: (!p.servers.is_empty()).then(|| p.servers.clone()),
            allow: p.allow.clone(),
            deny: p.deny.clone(),
        }
    }

    pub fn sees_server(&self, server: &str) -> bool {
        self.servers
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == server))
    }

    /// Whether an item of `server` named `name` (an exposed tool/prompt name or a resource URI)
    /// is visible.
    pub fn sees(&self, server: &str, name: &str) -> bool {
        self.sees_server(server)
            && !self.deny.iter().any(|g| glob_match(g, name))
            && (self.allow.is_empty() || self.allow.iter().any(|g| glob_match(g, name)))
    }
}

/// Why a session cannot have the profile it asked for.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    UnknownProfile(String),
    UnknownProject(String),
    /// The profile requires a token and none or a wrong one was presented.
    TokenRequired(String),
    /// The signed-in (OAuth) subject's rules do not give it this profile.
    NotGranted(String),
}

/// Who asks for a session, as far as choosing its profile goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    None,
    /// A token presented as a profile token (it may match none).
    Token(String),
    /// An OAuth subject: its principal, and the profile `settings.oauth.profiles` maps it to.
    Granted {
        principal: String,
        profile: Option<String>,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownProfile(p) => write!(f, "unknown profile `{p}`"),
            Refusal::UnknownProject(p) => write!(f, "unknown project `{p}`"),
            Refusal::TokenRequired(p) => write!(f, "profile `{p}` requires its token"),
            Refusal::NotGranted(p) => write!(f, "your sign-in does not grant profile `{p}`"),
        }
    }
}

/// What a new session is: its profile, project, and the filter both make.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub profile: Option<String>,
    pub project: Option<String>,
    pub filter: Filter,
    /// `token:<sha256>` when the session was admitted by its profile's token: an identity that
    /// outlives the session (tasks are bound to it).
    pub principal: Option<String>,
}

/// The scope of a new session: the profile as [`select`] chooses it, narrowed to the
/// project's servers (a session's view = project's servers ∩ profile's filter).
pub fn scope(
    config: &Config,
    profile: Option<&str>,
    project: Option<&str>,
    credential: &Credential,
) -> Result<Scope, Refusal> {
    let (profile, mut filter, principal) = match credential {
        Credential::Granted {
            principal,
            profile: granted,
        } => {
            let (p, f) = select_granted(config, profile, granted.as_deref())?;
            (p, f, Some(principal.clone()))
        }
        Credential::None | Credential::Token(_) => {
            let token = match credential {
                Credential::Token(t) => Some(t.as_str()),
                _ => None,
            };
            let (profile, filter) = select(config, profile, token)?;
            // A token that is some profile's token is an identity, whichever profile the
            // session then uses.
            let principal = token.map(secrets::sha256_hex).filter(|hash| {
                config.profiles.values().any(|p| {
                    p.token_sha256
                        .as_deref()
                        .is_some_and(|stored| secrets::ct_eq(stored, hash))
                })
            });
            (profile, filter, principal.map(|h| format!("token:{h}")))
        }
    };
    if let Some(name) = project {
        let p = config
            .projects
            .get(name)
            .ok_or_else(|| Refusal::UnknownProject(name.to_string()))?;
        if !p.servers.is_empty() {
            let within = |s: &String| p.servers.contains(s);
            filter.servers = Some(match filter.servers.take() {
                Some(servers) => servers.into_iter().filter(within).collect(),
                None => p.servers.clone(),
            });
        }
    }
    Ok(Scope {
        profile,
        project: project.map(str::to_string),
        filter,
        principal,
    })
}

/// The profile of an OAuth subject: the one its rules grant (asking for another is refused),
/// else the requested or default profile unless that one requires a token.
fn select_granted(
    config: &Config,
    requested: Option<&str>,
    granted: Option<&str>,
) -> Result<(Option<String>, Filter), Refusal> {
    if let (Some(r), Some(g)) = (requested, granted)
        && r != g
    {
        return Err(Refusal::NotGranted(r.to_string()));
    }
    let Some(name) = requested
        .or(granted)
        .map(str::to_string)
        .or_else(|| config.settings.default_profile.clone())
    else {
        return Ok((None, Filter::default()));
    };
    let profile = config
        .profiles
        .get(&name)
        .ok_or_else(|| Refusal::UnknownProfile(name.clone()))?;
    if profile.require_token && granted != Some(name.as_str()) {
        return Err(Refusal::NotGranted(name));
    }
    Ok((Some(name), Filter::from_profile(profile)))
}

/// The profile (name and filter) of a new session.
pub fn select(
    config: &Config,
    requested: Option<&str>,
    token: Option<&str>,
) -> Result<(Option<String>, Filter), Refusal> {
    let token_hash = token.map(secrets::sha256_hex);
    let holds_token = |p: &Profile| match (&token_hash, &p.token_sha256) {
        (Some(given), Some(stored)) => secrets::ct_eq(given, stored),
        _ => false,
    };
    let name = match requested {
        Some(name) => Some(name.to_string()),
        None => config
            .profiles
            .iter()
            .find(|(_, p)| holds_token(p))
            .map(|(n, _)| n.clone())
            .or_else(|| config.settings.default_profile.clone()),
    };
    let Some(name) = name else {
        return Ok((None, Filter::default()));
    };
    let profile = config
        .profiles
        .get(&name)
        .ok_or_else(|| Refusal::UnknownProfile(name.clone()))?;
    if profile.require_token && !holds_token(profile) {
        return Err(Refusal::TokenRequired(name));
    }
    Ok((Some(name), Filter::from_profile(profile)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs() {
        assert!(glob_match("filesystem/read_*", "filesystem/read_file"));
        assert!(!glob_match("filesystem/read_*", "filesystem/write_file"));
        assert!(glob_match("*/delete_*", "db/delete_row"));
        assert!(glob_match("*", "a/b/c"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("file://*", "file:///etc/hosts"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn deny_wins_and_empty_allow_allows_all() {
        let f = Filter {
            servers: Some(vec!["fs".into()]),
            allow: vec!["fs/*".into()],
            deny: vec!["*/delete_*".into()],
        };
        assert!(f.sees("fs", "fs/read"));
        assert!(!f.sees("fs", "fs/delete_all"));
        assert!(!f.sees("db", "fs/read"), "server not in the profile");
        assert!(Filter::default().sees("any", "thing"));
    }

    /// A reference model: a regex built from the glob.
    fn model(pattern: &str, text: &str) -> bool {
        let mut re = String::from("^");
        for c in pattern.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex_escape(c)),
            }
        }
        re.push('$');
        // A tiny backtracking matcher over the regex subset used above.
        regex_lite_match(&re, text)
    }

    fn regex_escape(c: char) -> String {
        if c.is_alphanumeric() {
            c.to_string()
        } else {
            format!("\\{c}")
        }
    }

    /// Matches `^…$` patterns built by `model` (literals, `\x`, `.`, `.*`) by recursion: a
    /// second, independent implementation to check `glob_match` against.
    fn regex_lite_match(re: &str, text: &str) -> bool {
        fn tokens(re: &str) -> Vec<(Option<char>, bool)> {
            // (Some(c) literal / None any, starred)
            let chars: Vec<char> = re
                .trim_start_matches('^')
                .trim_end_matches('$')
                .chars()
                .collect();
            let mut out = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                let (tok, next) = match chars[i] {
                    '\\' => (Some(chars[i + 1]), i + 2),
                    '.' => (None, i + 1),
                    c => (Some(c), i + 1),
                };
                let starred = chars.get(next) == Some(&'*');
                out.push((tok, starred));
                i = if starred { next + 1 } else { next };
            }
            out
        }
        fn go(toks: &[(Option<char>, bool)], text: &[char]) -> bool {
            match toks.split_first() {
                None => text.is_empty(),
                Some((&(tok, true), rest)) => (0..=text.len()).any(|k| {
                    text[..k].iter().all(|c| tok.is_none_or(|t| t == *c)) && go(rest, &text[k..])
                }),
                Some((&(tok, false), rest)) => {
                    !text.is_empty() && tok.is_none_or(|t| t == text[0]) && go(rest, &text[1..])
                }
            }
        }
        go(&tokens(re), &text.chars().collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn glob_agrees_with_the_model(pattern in "[ab/*?]{0,8}", text in "[ab/]{0,10}") {
            prop_assert_eq!(glob_match(&pattern, &text), model(&pattern, &text));
        }

        /// Visibility agrees with the definition: server listed, not denied, allowed.
        #[test]
        fn filter_agrees_with_the_definition(
            servers in prop::option::of(prop::collection::vec("[ab]", 0..3)),
            allow in prop::collection::vec("[ab/*]{1,4}", 0..3),
            deny in prop::collection::vec("[ab/*]{1,4}", 0..3),
            server in "[ab]",
            name in "[ab/]{0,6}",
        ) {
            let f = Filter { servers: servers.clone(), allow: allow.clone(), deny: deny.clone() };
            let expected = servers.as_ref().is_none_or(|s| s.contains(&server))
                && !deny.iter().any(|d| model(d, &name))
                && (allow.is_empty() || allow.iter().any(|a| model(a, &name)));
            prop_assert_eq!(f.sees(&server, &name), expected);
        }
    }
}

#[cfg(test)]
mod select_tests {
    use super::*;
    use mcp_director_api::models::Config;

    fn config() -> Config {
        crate::config::parse(
            &format!(
                "[settings]\ndefault_profile = \"basic\"\n[profiles.basic]\nallow = [\"*/read_*\"]\n\
                 [profiles.vip]\nrequire_token = true\ntoken_sha256 = \"{}\"\n",
                secrets::sha256_hex("vip-token")
            ),
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn default_profile_applies_when_none_is_named() {
        let (name, filter) = select(&config(), None, None).unwrap();
        assert_eq!(name.as_deref(), Some("basic"));
        assert!(filter.sees("fs", "fs/read_file") && !filter.sees("fs", "fs/write_file"));
        assert_eq!(
            select(&Config::default(), None, None).unwrap(),
            (None, Filter::default())
        );
    }

    #[test]
    fn a_token_alone_selects_its_profile_and_a_wrong_one_is_refused() {
        let (name, _) = select(&config(), None, Some("vip-token")).unwrap();
        assert_eq!(name.as_deref(), Some("vip"));
        assert_eq!(
            select(&config(), Some("vip"), Some("nope")),
            Err(Refusal::TokenRequired("vip".into()))
        );
        assert_eq!(
            select(&config(), Some("vip"), None),
            Err(Refusal::TokenRequired("vip".into()))
        );
        assert_eq!(
            select(&config(), Some("ghost"), None),
            Err(Refusal::UnknownProfile("ghost".into()))
        );
    }
}
