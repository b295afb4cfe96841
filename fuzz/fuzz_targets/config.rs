//! Any text as a configuration file: a configuration or an error naming where, never a
//! panic; a configuration survives writing and reading, and an admin edit of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_director::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = config::parse(text, "fuzz") {
        let written = config::to_toml(&c);
        assert_eq!(
            config::parse(&written, "again").expect("written form parses"),
            c
        );
        assert_eq!(
            config::parse(&config::edited(text, &c), "edited").expect("edit parses"),
            c
        );
    }
});
