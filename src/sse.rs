//! Server-Sent Events: a byte-stream parser (for HTTP upstreams) and the event writer (for
//! downstream streams), per the WHATWG event-stream format.

use bytes::Bytes;
use futures::{Stream, StreamExt};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// Incremental parser: feed bytes, take complete events. Each byte is looked at once (a
/// partial line is not searched again when more arrives), and an event larger than the limit
/// is an error rather than memory: a peer cannot make it quadratic or unbounded.
pub struct Parser {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no line end.
    searched: usize,
    event: Partial,
    /// Bytes of the event being read so far (its complete lines).
    size: usize,
    max: usize,
}

/// An event (or an unterminated line) larger than the parser's limit.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("an SSE event exceeds {0} bytes")]
pub struct TooLarge(pub usize);

impl Default for Parser {
    /// Unbounded (for trusted peers: the tests' own).
    fn default() -> Self {
        Self::with_limit(usize::MAX)
    }
}

impl Parser {
    /// A parser refusing events of more than `max` bytes.
    pub fn with_limit(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            searched: 0,
            event: Partial::default(),
            size: 0,
            max,
        }
    }

    /// The complete events in what has arrived so far; unbounded parsers never fail.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        let _ = self.try_feed(chunk, &mut out);
        out
    }

    /// Appends the complete events to `out`; `Err` once the event being read is too large
    /// (the parser is then unusable: the stream must be dropped).
    pub fn try_feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &self.buf[self.searched..]) {
            let end = self.searched + i;
            let mut line = &self.buf[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            self.size += line.len();
            // Checked per line, not per chunk: one chunk may hold a whole oversized event.
            if self.size > self.max {
                self.buf = Vec::new();
                return Err(TooLarge(self.max));
            }
            if let Some(event) = self.event.line(line) {
                out.push(event);
                self.size = 0;
            }
            start = end + 1;
            self.searched = start;
        }
        self.buf.drain(..start);
        self.searched = self.buf.len();
        if self.size.saturating_add(self.buf.len()) > self.max {
            self.buf = Vec::new();
            return Err(TooLarge(self.max));
        }
        Ok(())
    }
}

/// The event being read.
#[derive(Default)]
struct Partial {
    current: Event,
    has_data: bool,
}

impl Partial {
    /// One line; the event it completes, if any.
    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            // An event with an id and no data is kept too: it moves the last event id
            // (a priming event, which lets a client resume from the very start).
            let complete = self.has_data || self.current.id.is_some();
            let mut event = std::mem::take(&mut self.current);
            self.has_data = false;
            if !complete {
                return None;
            }
            if event.data.ends_with('\n') {
                event.data.pop();
            }
            return Some(event);
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let text = || String::from_utf8_lossy(value);
        match field {
            b"event" => self.current.event = Some(text().into_owned()),
            b"data" => {
                self.current.data.push_str(&text());
                self.current.data.push('\n');
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => self.current.id = Some(text().into_owned()),
            _ => {}
        }
        None
    }
}

/// Parses a body stream into events; an event over `max` bytes is an error, and the end.
pub fn events<S, E>(body: S, max: usize) -> impl Stream<Item = Result<Event, TooLarge>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Ready = std::collections::VecDeque<Result<Event, TooLarge>>;
    futures::stream::unfold(
        (body, Some(Parser::with_limit(max)), Ready::new()),
        |(mut body, mut parser, mut ready)| async move {
            loop {
                if let Some(e) = ready.pop_front() {
                    return Some((e, (body, parser, ready)));
                }
                let p = parser.as_mut()?;
                let chunk = match body.next().await {
                    Some(Ok(chunk)) => chunk,
                    _ => return None,
                };
                let mut out = Vec::new();
                let result = p.try_feed(&chunk, &mut out);
                ready.extend(out.into_iter().map(Ok));
                if let Err(e) = result {
                    // What came before the oversized event is still delivered, then the error.
                    ready.push_back(Err(e));
                    parser = None;
                }
            }
        },
    )
}

/// One event in wire form.
pub fn format(event: Option<&str>, id: Option<&str>, data: &str) -> String {
    let mut out = String::new();
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_chunks_comments_and_multiline_data() {
        let mut p = Parser::default();
        assert!(
            p.feed(b": ping\n\nevent: endpoint\r\ndata: /mcp?sess")
                .is_empty()
        );
        let e = p.feed(b"ionId=1\n\nid: 7\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(
            e,
            vec![
                Event {
                    event: Some("endpoint".into()),
                    data: "/mcp?sessionId=1".into(),
                    id: None
                },
                Event {
                    event: None,
                    data: "{\"a\":\n1}".into(),
                    id: Some("7".into())
                },
            ]
        );
        let wire = format(Some("message"), Some("s-1"), "{\"a\":\n1}");
        let mut p = Parser::default();
        assert_eq!(p.feed(wire.as_bytes())[0].data, "{\"a\":\n1}");
    }

    #[test]
    fn a_priming_event_has_an_id_and_no_data() {
        let mut p = Parser::default();
        let e = p.feed(b"id: r1-0\nretry: 1000\n\n: keep-alive\n\n");
        assert_eq!(
            e,
            vec![Event {
                event: None,
                data: String::new(),
                id: Some("r1-0".into())
            }]
        );
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn an_oversized_event_or_line_is_refused() {
        let mut p = Parser::with_limit(16);
        let mut out = Vec::new();
        assert!(p.try_feed(b"data: 0123456789\n\n", &mut out).is_ok());
        assert_eq!(out.len(), 1);
        // Over several lines.
        assert_eq!(
            p.try_feed(b"data: 0123456789\ndata: 0123456789\n", &mut out),
            Err(TooLarge(16))
        );
        // One unterminated line, fed in pieces.
        let mut p = Parser::with_limit(16);
        assert!(p.try_feed(b"data: 01234", &mut out).is_ok());
        assert!(p.try_feed(b"56789abcdef", &mut out).is_err());
        // A whole oversized event in one chunk (found by `fuzz/` sse): refused, not delivered.
        let mut p = Parser::with_limit(16);
        let mut out = Vec::new();
        let event = format!("data: {}\n\n", "x".repeat(40));
        assert_eq!(p.try_feed(event.as_bytes(), &mut out), Err(TooLarge(16)));
        assert!(out.is_empty());
    }

    #[test]
    fn a_long_line_in_small_pieces_is_linear() {
        // 2 MiB in 1-byte chunks: quadratic rescanning would take minutes.
        let mut p = Parser::default();
        let mut out = Vec::new();
        p.try_feed(b"data: ", &mut out).unwrap();
        for _ in 0..(2 << 20) {
            p.try_feed(b"x", &mut out).unwrap();
        }
        p.try_feed(b"\n\n", &mut out).unwrap();
        assert_eq!(out[0].data.len(), 2 << 20);
    }
}
