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

/// Incremental parser: feed bytes, take complete events.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    current: Event,
    has_data: bool,
}

impl Parser {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                // An event with an id and no data is kept too: it moves the last event id
                // (a priming event, which lets a client resume from the very start).
                if self.has_data || self.current.id.is_some() {
                    let mut event = std::mem::take(&mut self.current);
                    if event.data.ends_with('\n') {
                        event.data.pop();
                    }
                    out.push(event);
                } else {
                    self.current = Event::default();
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.to_string(), String::new()),
            };
            match field.as_str() {
                "event" => self.current.event = Some(value),
                "data" => {
                    self.current.data.push_str(&value);
                    self.current.data.push('\n');
                    self.has_data = true;
                }
                "id" => self.current.id = Some(value),
                _ => {}
            }
        }
        out
    }
}

/// Parses a body stream into events.
pub fn events<S, E>(body: S) -> impl Stream<Item = Event>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    futures::stream::unfold(
        (body, Parser::default(), Vec::<Event>::new()),
        |(mut body, mut parser, mut ready)| async move {
            loop {
                if !ready.is_empty() {
                    let e = ready.remove(0);
                    return Some((e, (body, parser, ready)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => ready = parser.feed(&chunk),
                    _ => return None,
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
