//! Newline-delimited messages (the stdio framing of MCP): read as bytes, each bounded.

use tokio::io::{AsyncBufReadExt, BufReader};

/// Newline-delimited messages as bytes (a stray non-UTF-8 byte spoils one message, not the
/// connection), each at most `max` bytes.
pub struct Lines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    max: usize,
    /// Past `max`: cut the line there (log lines) rather than fail (messages).
    truncate: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> Lines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(64 << 10, reader),
            line: Vec::new(),
            max,
            truncate: false,
        }
    }

    pub fn truncating(reader: R, max: usize) -> Self {
        Self {
            truncate: true,
            ..Self::new(reader, max)
        }
    }

    /// The next line without its end; `None` at the end of the stream.
    pub async fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.line.clear();
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok((!self.line.is_empty()).then_some(&self.line[..]));
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            let room = self.max.saturating_sub(self.line.len());
            if take > room && !self.truncate {
                return Err(std::io::Error::other(format!(
                    "a message longer than {} bytes (the limit)",
                    self.max
                )));
            }
            self.line.extend_from_slice(&buf[..take.min(room)]);
            self.reader.consume(take + usize::from(done));
            if done {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                return Ok(Some(&self.line[..]));
            }
        }
    }
}
