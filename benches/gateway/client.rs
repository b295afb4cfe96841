//! Load-generator clients that behave like real MCP clients: keep-alive HTTP/1.1 connections
//! (TCP_NODELAY, as reqwest and httpx's anyio set it) sending the spec's
//! `Accept: application/json, text/event-stream`, reading SSE answers event by event, and
//! checking every reply; and a stdio client multiplexing requests over one child's pipes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

pub const VERSION: &str = "2025-11-25";

/// One keep-alive HTTP/1.1 connection to an MCP endpoint.
pub struct Http {
    send: SendRequest<Full<Bytes>>,
    authority: String,
    path: String,
    pub session: Option<String>,
    next_id: i64,
}

/// What one POST got back.
pub struct Answer {
    pub status: u16,
    pub session: Option<String>,
    /// The JSON-RPC response (from a JSON body or from the SSE stream), if any, as text.
    pub text: Option<String>,
}

impl Answer {
    pub fn message(&self) -> Option<Value> {
        self.text
            .as_deref()
            .map(|t| serde_json::from_str(t).expect("a JSON-RPC message"))
    }
}

impl Http {
    pub async fn connect(url: &str) -> Http {
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Http {
            send,
            authority: authority.to_string(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
            session: None,
            next_id: 0,
        }
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// POSTs `body` (with the session, if any) and reads the whole answer.
    pub async fn post(&mut self, body: String) -> Answer {
        let mut request = hyper::Request::post(&self.path)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", VERSION);
        if let Some(s) = &self.session {
            request = request.header("mcp-session-id", s);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        self.send.ready().await.expect("connection ready");
        let response = self.send.send_request(request).await.expect("an answer");
        let status = response.status().as_u16();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = response.into_body();
        let text = if sse {
            // Event by event, as clients do: the answer is the event holding a response.
            let mut parser = mcp_director::sse::Parser::default();
            let mut found = None;
            while let Some(frame) = body.frame().await {
                let frame = frame.expect("a body frame");
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                for event in parser.feed(data) {
                    if event.data.is_empty() {
                        continue;
                    }
                    // A response, not a request or notification.
                    #[derive(serde::Deserialize)]
                    struct Kind<'a> {
                        #[serde(borrow)]
                        method: Option<&'a serde_json::value::RawValue>,
                    }
                    let kind: Kind = serde_json::from_str(&event.data).expect("JSON event");
                    if kind.method.is_none() {
                        found = Some(event.data);
                    }
                }
            }
            found
        } else {
            let bytes = body.collect().await.expect("a body").to_bytes();
            (!bytes.is_empty()).then(|| String::from_utf8(bytes.to_vec()).expect("UTF-8 body"))
        };
        Answer {
            status,
            session,
            text,
        }
    }

    /// `initialize` then `notifications/initialized`, as every client starts; keeps the
    /// session it was given.
    pub async fn initialize(&mut self) {
        self.session = None;
        let id = self.next_id();
        let a = self.post(initialize_body(id)).await;
        assert_eq!(a.status, 200, "initialize answered {}", a.status);
        assert!(
            a.message().is_some_and(|m| m.get("result").is_some()),
            "initialize failed: {:?}",
            a.text
        );
        self.session = a.session;
        let a = self
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await;
        assert_eq!(a.status, 202);
    }

    /// Calls `tool` with `arguments`; the result, after checking it is one.
    pub async fn call(&mut self, tool: &str, arguments: &Value) -> Value {
        let id = self.next_id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let a = self.post(body.to_string()).await;
        let m = a
            .message()
            .unwrap_or_else(|| panic!("no answer ({})", a.status));
        assert_eq!(m["id"], json!(id), "{m}");
        m.get("result").cloned().unwrap_or_else(|| panic!("{m}"))
    }

    /// Every page of `tools/list`; the number of tools.
    pub async fn list_tools(&mut self) -> usize {
        #[derive(serde::Deserialize)]
        struct Page {
            result: Result,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Result {
            tools: Vec<serde::de::IgnoredAny>,
            next_cursor: Option<String>,
        }
        let mut count = 0;
        let mut cursor: Option<String> = None;
        loop {
            let id = self.next_id();
            let mut body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
            if let Some(c) = &cursor {
                body["params"] = json!({"cursor": c});
            }
            let a = self.post(body.to_string()).await;
            let page: Page = serde_json::from_str(&a.text.expect("an answer")).expect("a page");
            count += page.result.tools.len();
            match page.result.next_cursor {
                Some(c) => cursor = Some(c),
                None => return count,
            }
        }
    }
}

pub fn initialize_body(id: i64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}})
    .to_string()
}

/// An MCP server over a child's stdin/stdout, shared by concurrent callers (ids multiplexed).
pub struct StdioServer {
    to_child: mpsc::UnboundedSender<String>,
    waiting: Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>,
    next_id: AtomicI64,
    _child: tokio::process::Child,
}

impl StdioServer {
    pub async fn spawn(program: &str) -> Arc<StdioServer> {
        let mut child = tokio::process::Command::new(program)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the stdio server");
        let mut stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (to_child, mut lines) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let waiting: Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>> = Arc::default();
        let w = waiting.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let m: Value = serde_json::from_str(&line).expect("a JSON line");
                if let Some(tx) = m["id"]
                    .as_i64()
                    .and_then(|id| w.lock().unwrap().remove(&id))
                {
                    let _ = tx.send(m);
                }
            }
        });
        let s = Arc::new(StdioServer {
            to_child,
            waiting,
            next_id: AtomicI64::new(1),
            _child: child,
        });
        let init = s.request(
            "initialize",
            json!({"protocolVersion": VERSION,
            "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
        assert!(init.await.get("result").is_some());
        let _ = s.to_child.send(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string() + "\n",
        );
        s
    }

    pub async fn request(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id, tx);
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.to_child
            .send(line.to_string() + "\n")
            .expect("the child is running");
        let m = rx.await.expect("an answer");
        assert_eq!(m["id"], json!(id));
        m
    }

    pub async fn call(&self, tool: &str, arguments: &Value) -> Value {
        let m = self
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        m.get("result").cloned().unwrap_or_else(|| panic!("{m}"))
    }
}
