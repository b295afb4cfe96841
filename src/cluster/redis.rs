//! Rate limits exact across replicas (`[settings.cluster] redis_url`): each principal's bucket
//! is one GCRA state in Redis (the time its next request is "due"), taken by a script so the
//! replicas never race and Redis's clock is the only clock. A small RESP client suffices: one
//! command at a time on one connection, re-opened after any failure.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// One request from the bucket at KEYS[1], refilled one every ARGV[1] µs up to ARGV[2] µs
/// ahead (the burst): 0 when taken, else the µs to wait. Times are µs since the epoch, well
/// within a Lua number's exact integers.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local due = tonumber(redis.call('GET', KEYS[1]) or '0')
if due < now then due = now end
local after = due + interval
if after - now > burst then return after - burst - now end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', string.format('%d', math.ceil((after - now) / 1000)))
return 0
";

/// How long one exchange with Redis may take before the replica decides alone.
const TIMEOUT: Duration = Duration::from_secs(1);

pub struct SharedLimits {
    addr: String,
    /// `AUTH` and `SELECT` to send on each new connection.
    hello: Vec<Vec<String>>,
    conn: Mutex<Option<BufStream<TcpStream>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("Redis answered: {0}")]
    Server(String),
    #[error("unexpected reply from Redis")]
    Protocol,
    #[error("Redis did not answer within {TIMEOUT:?}")]
    Timeout,
}

/// A Redis reply (RESP2), as far as these commands need: their integers; the rest is read
/// through and not kept.
#[derive(Debug, PartialEq)]
enum Reply {
    Int(i64),
    Other,
}

impl SharedLimits {
    /// From `redis://[[user]:password@]host[:port][/db]`.
    pub fn new(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if parsed.scheme() != "redis" {
            return Err("only redis:// URLs are supported (no TLS)".into());
        }
        let host = parsed.host_str().ok_or("no host")?;
        let addr = format!("{host}:{}", parsed.port().unwrap_or(6379));
        let mut hello = Vec::new();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|d| d.into_owned())
                .map_err(|_| "the credentials are not UTF-8".to_string())
        };
        if let Some(password) = parsed.password() {
            let mut auth = vec!["AUTH".to_string()];
            if !parsed.username().is_empty() {
                auth.push(decode(parsed.username())?);
            }
            auth.push(decode(password)?);
            hello.push(auth);
        }
        match parsed.path().trim_start_matches('/') {
            "" => {}
            db if db.bytes().all(|b| b.is_ascii_digit()) => {
                hello.push(vec!["SELECT".into(), db.into()])
            }
            other => return Err(format!("`{other}` is not a database number")),
        }
        Ok(Self {
            addr,
            hello,
            conn: Mutex::new(None),
        })
    }

    /// Takes one request from `key`'s bucket of `per_minute` with `burst`: `Ok(Err(wait))`
    /// when it is empty; `Err` when Redis cannot say.
    pub async fn take(
        &self,
        key: &str,
        per_minute: u32,
        burst: u32,
    ) -> Result<Result<(), Duration>, RedisError> {
        let interval = 60_000_000 / u64::from(per_minute.max(1));
        let ahead = interval * u64::from(burst.max(1));
        let key = format!("mcp-director:rate:{per_minute}:{burst}:{key}");
        let args = [
            "EVAL".to_string(),
            TAKE.to_string(),
            "1".into(),
            key,
            interval.to_string(),
            ahead.to_string(),
        ];
        match self.command(&args).await? {
            Reply::Int(0) => Ok(Ok(())),
            Reply::Int(wait) if wait > 0 => Ok(Err(Duration::from_micros(wait as u64))),
            _ => Err(RedisError::Protocol),
        }
    }

    /// Whether Redis answers (for health).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.command(&["PING".to_string()]).await.map(|_| ())
    }

    async fn command(&self, args: &[String]) -> Result<Reply, RedisError> {
        let mut conn = self.conn.lock().await;
        let answered = tokio::time::timeout(TIMEOUT, async {
            if conn.is_none() {
                let mut fresh = BufStream::new(TcpStream::connect(&self.addr).await?);
                fresh.get_ref().set_nodelay(true)?;
                for hello in &self.hello {
                    exchange(&mut fresh, hello).await?;
                }
                *conn = Some(fresh);
            }
            let Some(c) = conn.as_mut() else {
                return Err(RedisError::Protocol);
            };
            exchange(c, args).await
        })
        .await
        .unwrap_or(Err(RedisError::Timeout));
        if answered.is_err() {
            // Whatever state the connection is in, the next command starts on a new one.
            *conn = None;
        }
        answered
    }
}

async fn exchange(c: &mut BufStream<TcpStream>, args: &[String]) -> Result<Reply, RedisError> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    c.write_all(&out).await?;
    c.flush().await?;
    read_reply(c).await
}

/// Replies this client reads are small; anything larger than this is not one of ours.
const MAX_BULK: usize = 1 << 20;

fn read_reply<'a>(
    c: &'a mut BufStream<TcpStream>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RedisError>> + Send + 'a>> {
    Box::pin(async move {
        let mut line = String::new();
        if c.read_line(&mut line).await? == 0 {
            return Err(RedisError::Protocol);
        }
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at_checked(1).ok_or(RedisError::Protocol)?;
        let number = || rest.parse::<i64>().map_err(|_| RedisError::Protocol);
        match kind {
            "+" => Ok(Reply::Other),
            "-" => Err(RedisError::Server(rest.to_string())),
            ":" => Ok(Reply::Int(number()?)),
            "$" => match number()? {
                -1 => Ok(Reply::Other),
                n if n >= 0 && (n as usize) <= MAX_BULK => {
                    let mut data = vec![0; n as usize + 2];
                    c.read_exact(&mut data).await?;
                    Ok(Reply::Other)
                }
                _ => Err(RedisError::Protocol),
            },
            "*" => match number()? {
                -1 => Ok(Reply::Other),
                n if (0..=64).contains(&n) => {
                    for _ in 0..n {
                        read_reply(c).await?;
                    }
                    Ok(Reply::Other)
                }
                _ => Err(RedisError::Protocol),
            },
            _ => Err(RedisError::Protocol),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_address_credentials_and_database() {
        let l = SharedLimits::new("redis://:p%40ss@cache:6380/2").unwrap();
        assert_eq!(l.addr, "cache:6380");
        assert_eq!(
            l.hello,
            vec![
                vec!["AUTH".to_string(), "p@ss".into()],
                vec!["SELECT".into(), "2".into()]
            ]
        );
        let l = SharedLimits::new("redis://u:p@127.0.0.1").unwrap();
        assert_eq!(l.addr, "127.0.0.1:6379");
        assert_eq!(
            l.hello,
            vec![vec!["AUTH".to_string(), "u".into(), "p".into()]]
        );
        for bad in [
            "rediss://x",
            "http://x",
            "redis:///0",
            "redis://x/db",
            "nonsense",
        ] {
            assert!(SharedLimits::new(bad).is_err(), "{bad}");
        }
    }
}
