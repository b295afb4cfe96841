//! Any byte stream, cut anywhere: the same events as in one piece, and a limit is never
//! exceeded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_director::sse::Parser;

fuzz_target!(|data: &[u8]| {
    let whole = Parser::default().feed(data);
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut p = Parser::default();
    let mut pieces = p.feed(&data[..cut]);
    pieces.extend(p.feed(&data[cut..]));
    assert_eq!(whole, pieces);
    let mut limited = Parser::with_limit(64);
    let mut out = Vec::new();
    if limited.try_feed(data, &mut out).is_ok() {
        // The limit is on bytes received; a byte that is not UTF-8 becomes U+FFFD (3 bytes).
        assert!(out.iter().all(|e| e.data.len() <= 3 * 64));
    }
});
