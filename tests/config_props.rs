//! Property tests: configuration round trips, name validation, `${VAR}` expansion.

use mcp_director::config;
use mcp_director_api::models::{Config, Profile, Project, Server, Transport};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.-]{0,20}"
}

/// Any text a user might put in a value: quotes, backslashes, newlines, unicode.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \"'\\\\\n\t=#\\[\\]{}é漢-]{0,24}"
}

fn server() -> impl Strategy<Value = Server> {
    (
        prop::bool::ANY,
        text(),
        prop::collection::vec(text(), 0..4),
        prop::collection::btree_map("[A-Z_]{1,8}", text(), 0..3),
        prop::option::of(prop_oneof![Just(String::new()), name()]),
        prop::bool::ANY,
    )
        .prop_map(|(stdio, cmd, args, env, prefix, enabled)| {
            let mut s = Server {
                env,
                prefix,
                enabled,
                ..Server::default()
            };
            if stdio {
                s.command = Some(format!("cmd{cmd}"));
                s.args = args;
            } else {
                s.transport = Transport::StreamableHttp;
                s.url = Some(format!("http://127.0.0.1:9/{}", cmd.len()));
                s.headers = s.env.clone();
                s.env.clear();
            }
            s
        })
}

fn config() -> impl Strategy<Value = Config> {
    prop::collection::btree_map(name(), server(), 0..5).prop_flat_map(|servers| {
        let names: Vec<String> = servers.keys().cloned().collect();
        let subset = if names.is_empty() {
            Just(Vec::new()).boxed()
        } else {
            prop::sample::subsequence(names.clone(), 0..=names.len()).boxed()
        };
        let profile = (
            subset.clone(),
            prop::collection::vec("[a-z*/_]{1,12}", 0..3),
        )
            .prop_map(|(servers, allow)| Profile {
                servers,
                allow,
                ..Profile::default()
            });
        let project = (subset, text()).prop_map(|(servers, cwd)| Project {
            servers,
            cwd: Some(cwd),
            ..Project::default()
        });
        (
            Just(servers),
            prop::collection::btree_map(name(), profile, 0..3),
            prop::collection::btree_map(name(), project, 0..3),
        )
            .prop_map(|(servers, profiles, projects)| Config {
                servers,
                profiles,
                projects,
                ..Config::default()
            })
    })
}

proptest! {
    #[test]
    fn config_survives_toml_round_trip(cfg in config()) {
        config::validate(&cfg).unwrap();
        let text = config::to_toml(&cfg);
        let back = config::parse(&text, "prop.toml").unwrap();
        prop_assert_eq!(back, cfg);
    }

    /// `is_valid_name` agrees with the spec's pattern (checked by the generated type).
    #[test]
    fn name_rule_matches_the_spec_pattern(s in "[A-Za-z0-9_.\\- /é]{0,70}") {
        let by_spec = s.parse::<mcp_director_api::models::ServerName>().is_ok();
        prop_assert_eq!(config::is_valid_name(&s), by_spec);
    }

    /// Text without `$` is untouched; `$$` is a literal `$`; `${V}` is V's value.
    #[test]
    fn expansion_model(parts in prop::collection::vec(prop_oneof![
        "[a-z /:]{0,6}".prop_map(|s| (s.clone(), s)),
        Just(("$$".to_string(), "$".to_string())),
        "[A-Z]{1,5}".prop_map(|v| (format!("${{{v}}}"), format!("<{v}>"))),
    ], 0..6)) {
        let input: String = parts.iter().map(|(i, _)| i.as_str()).collect();
        let expected: String = parts.iter().map(|(_, o)| o.as_str()).collect();
        let lookup = |v: &str| Some(format!("<{v}>"));
        prop_assert_eq!(config::expand_str(&input, &lookup).unwrap(), expected);
    }
}

#[test]
fn keys_of_every_map_are_validated_like_names() {
    let mut cfg = Config::default();
    cfg.servers.insert(
        "bad name".into(),
        Server {
            command: Some("x".into()),
            ..Server::default()
        },
    );
    let err = config::validate(&cfg).unwrap_err().to_string();
    assert!(err.starts_with("servers.bad name:"), "{err}");
    let mut cfg = Config::default();
    cfg.profiles.insert("ok".into(), Profile::default());
    cfg.settings.default_profile = Some("missing".into());
    assert!(config::validate(&cfg).is_err());
}
