//! Any servers and names: every exposed name resolves back to its entry, and collisions are
//! reported, not crashes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_director::naming::{NameTable, Strategy};

fuzz_target!(|input: (bool, Vec<(String, String, String)>)| {
    let (compat, entries) = input;
    let strategy = if compat {
        Strategy::Compat
    } else {
        Strategy::Prefix
    };
    let table = NameTable::build(strategy, entries.clone());
    for (server, _, name) in &entries {
        if let Some(exposed) = table.exposed(server, name) {
            assert_eq!(
                table.resolve(exposed),
                Some((server.as_str(), name.as_str()))
            );
            if compat {
                assert!(exposed.len() <= 64 && !exposed.is_empty());
                assert!(
                    exposed
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                );
            }
        }
    }
});
