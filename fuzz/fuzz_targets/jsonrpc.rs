//! Any bytes: a message or a JSON-RPC error, never a panic; what parses writes back to text
//! that parses to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_director::jsonrpc::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let text = m.to_json();
        let again = Message::parse(text.as_bytes()).expect("our own output parses");
        assert_eq!(again.to_json(), text);
    }
});
