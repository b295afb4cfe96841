//! The conformance catalogue of `mcp-fixture-server` (`FIXTURE_CONFORMANCE=1`): the tools,
//! resources, prompts, completion, logging and subscriptions the official MCP conformance
//! suite calls, by the same names and with the same answers as its reference server
//! (`everything-server.ts` of `@modelcontextprotocol/conformance`).
//!
//! It also serves the extra fixtures of the 2026 reference server that a 2025-11-25 server can
//! serve: the `test_input_required_result_*` tools and prompt ask the client through ordinary
//! server→client requests (`elicitation/create`, `sampling/createMessage`, `roots/list`) where
//! the 2026 server answers `input_required`; `test://stateless-static-text`; the
//! `test_trigger_*_change` tools (list-changed notifications).

use super::Server;
use mcp_director::jsonrpc::ErrorObject;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A 1x1 red PNG pixel.
const IMAGE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
const AUDIO: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// Log levels by severity (RFC 5424, as `logging/setLevel` names them).
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Per-process state of the conformance mode (one client: the director).
#[derive(Default)]
pub struct State {
    /// The capabilities the client declared in `initialize`.
    client_capabilities: Mutex<Value>,
    /// The level `logging/setLevel` set (index into LEVELS); None: never set, log everything.
    log_level: Mutex<Option<usize>>,
    subscriptions: Mutex<HashSet<String>>,
    /// How many times `test_trigger_tool_change` / `test_trigger_prompt_change` ran: each adds
    /// one item, so the list really changes.
    added_tools: AtomicUsize,
    added_prompts: AtomicUsize,
}

/// Answers one request in conformance mode.
pub async fn handle(
    server: &Server,
    state: &State,
    method: &str,
    params: Value,
) -> Result<Value, ErrorObject> {
    match method {
        "initialize" => {
            *lock(&state.client_capabilities) = params["capabilities"].clone();
            let version = params["protocolVersion"]
                .as_str()
                .filter(|v| ["2024-11-05", "2025-03-26", "2025-06-18"].contains(v))
                .unwrap_or("2025-11-25");
            Ok(json!({
                "protocolVersion": version,
                "capabilities": {
                    "tools": {"listChanged": true},
                    "resources": {"subscribe": true, "listChanged": true},
                    "prompts": {"listChanged": true},
                    "logging": {},
                    "completions": {},
                },
                "serverInfo": {"name": "mcp-conformance-test-server", "version": "1.0.0"},
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => {
            let mut tools = tools();
            for i in 0..state.added_tools.load(Ordering::Relaxed) {
                tools.push(tool(
                    &format!("test_added_tool_{i}"),
                    "Added by a trigger",
                    json!({}),
                    &[],
                ));
            }
            Ok(cacheable(json!({ "tools": tools })))
        }
        "tools/call" => call(server, state, &params).await,
        "resources/list" => Ok(cacheable(json!({"resources": resources()}))),
        "resources/templates/list" => Ok(cacheable(json!({"resourceTemplates": [{
            "uriTemplate": "test://template/{id}/data", "name": "template",
            "title": "Resource Template",
            "description": "A resource template with parameter substitution",
            "mimeType": "application/json",
        }]}))),
        "resources/read" => read(params["uri"].as_str().unwrap_or_default()),
        "resources/subscribe" | "resources/unsubscribe" => {
            let uri = params["uri"].as_str().unwrap_or_default().to_string();
            let mut subscriptions = lock(&state.subscriptions);
            let what = if method == "resources/subscribe" {
                subscriptions.insert(uri.clone());
                "Subscribed to"
            } else {
                subscriptions.remove(&uri);
                "Unsubscribed from"
            };
            drop(subscriptions);
            log(
                server,
                state,
                "info",
                json!(format!("{what} resource: {uri}")),
            );
            Ok(json!({}))
        }
        "prompts/list" => {
            let mut prompts = prompts();
            for i in 0..state.added_prompts.load(Ordering::Relaxed) {
                prompts.push(json!({"name": format!("test_added_prompt_{i}"), "description": "Added by a trigger"}));
            }
            Ok(cacheable(json!({ "prompts": prompts })))
        }
        "prompts/get" => prompt(server, &params).await,
        "logging/setLevel" => {
            let level = params["level"].as_str().unwrap_or_default();
            let Some(i) = LEVELS.iter().position(|l| *l == level) else {
                return Err(ErrorObject::invalid_params(format!(
                    "Unknown log level: {level}"
                )));
            };
            *lock(&state.log_level) = Some(i);
            log(
                server,
                state,
                "info",
                json!(format!("Log level set to: {level}")),
            );
            Ok(json!({}))
        }
        "completion/complete" => {
            Ok(json!({"completion": {"values": [], "total": 0, "hasMore": false}}))
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// MissingRequiredClientCapabilityError.
const MISSING_CAPABILITY: i64 = -32021;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The SEP-2549 caching hints the reference server adds to its lists.
fn cacheable(mut result: Value) -> Value {
    result["ttlMs"] = json!(300000);
    result["cacheScope"] = json!("public");
    result
}

/// A `notifications/message` at `level`, unless `logging/setLevel` asked for a higher one.
fn log(server: &Server, state: &State, level: &str, data: Value) {
    let at = LEVELS.iter().position(|l| *l == level).unwrap_or(0);
    if lock(&state.log_level).is_none_or(|min| at >= min) {
        server.notify(
            "notifications/message",
            json!({"level": level, "logger": "conformance-test-server", "data": data}),
        );
    }
}

/// A tool with `execution.taskSupport`: a gateway in front runs its calls as tasks.
fn task_tool(name: &str, description: &str, properties: Value, support: &str) -> Value {
    let mut t = tool(name, description, properties, &[]);
    t["execution"] = json!({ "taskSupport": support });
    t
}

fn text(t: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": t.into()}]})
}

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({"name": name, "description": description, "inputSchema": {
        "type": "object", "properties": properties, "required": required}})
}

fn tools() -> Vec<Value> {
    let none = || json!({});
    let string = |d: &str| json!({"type": "string", "description": d});
    let mut tools = vec![
        tool(
            "test_simple_text",
            "Tests simple text content response",
            none(),
            &[],
        ),
        tool(
            "test_image_content",
            "Tests image content response",
            none(),
            &[],
        ),
        tool(
            "test_audio_content",
            "Tests audio content response",
            none(),
            &[],
        ),
        tool(
            "test_embedded_resource",
            "Tests embedded resource content response",
            none(),
            &[],
        ),
        tool(
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            none(),
            &[],
        ),
        tool(
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
            none(),
            &[],
        ),
        tool(
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
            none(),
            &[],
        ),
        tool(
            "test_error_handling",
            "Tests error response handling",
            none(),
            &[],
        ),
        tool(
            "test_reconnection",
            "Tests SSE stream disconnection and client reconnection (SEP-1699)",
            none(),
            &[],
        ),
        tool(
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            json!({"prompt": string("The prompt to send to the LLM")}),
            &["prompt"],
        ),
        tool(
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            json!({"message": string("The message to show the user")}),
            &["message"],
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
            none(),
            &[],
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
            none(),
            &[],
        ),
        json!({"name": "json_schema_2020_12_tool",
            "description": "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
            "inputSchema": json_schema_2020_12()}),
        // From the 2026 reference server.
        tool(
            "test_missing_capability",
            "Test tool requiring sampling",
            none(),
            &[],
        ),
        tool(
            "test_streaming_elicitation",
            "Diagnostic tool validating response progress streams",
            none(),
            &[],
        ),
        tool(
            "test_logging_tool",
            "Diagnostic logging validator tool",
            none(),
            &[],
        ),
        tool(
            "test_trigger_tool_change",
            "Sends notifications/tools/list_changed",
            none(),
            &[],
        ),
        tool(
            "test_trigger_prompt_change",
            "Sends notifications/prompts/list_changed",
            none(),
            &[],
        ),
        tool(
            "test_custom_headers",
            "Arguments mirrored in Mcp-Param-* headers (x-mcp-header)",
            json!({
                "region": {"type": "string", "x-mcp-header": "Region"},
                "priority": {"type": "integer", "x-mcp-header": "Priority"},
                "verbose": {"type": "boolean", "x-mcp-header": "Verbose"},
                "debug": {"type": "boolean", "x-mcp-header": "Debug"},
                "empty_val": {"type": "string", "x-mcp-header": "EmptyVal"},
                "method_val": {"type": "string", "x-mcp-header": "Method"},
                "float_val": {"type": "number"},
                "non_ascii_val": {"type": "string", "x-mcp-header": "NonAscii"},
                "whitespace_val": {"type": "string", "x-mcp-header": "Whitespace"},
                "leading_space_val": {"type": "string", "x-mcp-header": "LeadingSpace"},
                "trailing_space_val": {"type": "string", "x-mcp-header": "TrailingSpace"},
                "internal_space_val": {"type": "string", "x-mcp-header": "InternalSpace"},
                "control_char_val": {"type": "string", "x-mcp-header": "ControlChar"},
                "crlf_val": {"type": "string", "x-mcp-header": "Crlf"},
            }),
            &[],
        ),
        tool(
            "greet",
            "Greets (never a task)",
            json!({"name": string("Who")}),
            &[],
        ),
        task_tool(
            "slow_compute",
            "Sleeps `seconds`, then answers",
            json!({"seconds": {"type": "number"}, "label": {"type": "string"}}),
            "optional",
        ),
        task_tool(
            "failing_job",
            "Reports a tool error after ~1 s",
            json!({}),
            "required",
        ),
        task_tool(
            "protocol_error_job",
            "Fails with a JSON-RPC error",
            json!({}),
            "optional",
        ),
        task_tool(
            "confirm_delete",
            "Asks the user to confirm, then deletes (nothing)",
            json!({"filename": {"type": "string"}}),
            "optional",
        ),
        task_tool(
            "multi_input",
            "Asks two questions at once",
            json!({}),
            "optional",
        ),
        task_tool(
            "test_tool_with_task",
            "Asks the user's name, then greets in a task",
            json!({}),
            "required",
        ),
    ];
    for (name, description) in [
        ("elicitation", "elicitation request"),
        ("sampling", "sampling request"),
        ("list_roots", "roots/list request"),
        ("request_state", "requestState"),
        ("multiple_inputs", "multiple input requests"),
        ("multi_round", "multi-round workflow"),
        ("tampered_state", "requestState integrity test"),
        ("capabilities", "inputs the client's capabilities allow"),
    ] {
        tools.push(tool(
            &format!("test_input_required_result_{name}"),
            &format!("MRTR: asks the client ({description})"),
            none(),
            &[],
        ));
    }
    tools
}

/// SEP-1613/SEP-2106: an input schema using the JSON Schema 2020-12 vocabulary, which must
/// survive `tools/list` unchanged.
fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    })
}

async fn call(server: &Server, state: &State, params: &Value) -> Result<Value, ErrorObject> {
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let string_arg = |k: &str| {
        args[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ErrorObject::invalid_params(format!("missing string argument {k}")))
    };
    let sleep = |ms| tokio::time::sleep(Duration::from_millis(ms));
    match params["name"].as_str().unwrap_or_default() {
        "test_simple_text" => Ok(text("This is a simple text response for testing.")),
        "test_image_content" => {
            Ok(json!({"content": [{"type": "image", "data": IMAGE, "mimeType": "image/png"}]}))
        }
        "test_audio_content" => {
            Ok(json!({"content": [{"type": "audio", "data": AUDIO, "mimeType": "audio/wav"}]}))
        }
        "test_embedded_resource" => Ok(json!({"content": [{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content."}}]})),
        "test_multiple_content_types" => Ok(json!({"content": [
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": IMAGE, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                "mimeType": "application/json", "text": json!({"test": "data", "value": 123}).to_string()}},
        ]})),
        "test_tool_with_logging" => {
            for (i, message) in [
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed",
            ]
            .iter()
            .enumerate()
            {
                if i > 0 {
                    sleep(50).await;
                }
                log(server, state, "info", json!(message));
            }
            Ok(text("Tool with logging executed successfully"))
        }
        "test_tool_with_progress" => {
            let token = params.pointer("/_meta/progressToken").cloned();
            for progress in [0, 50, 100] {
                if progress > 0 {
                    sleep(50).await;
                }
                if let Some(token) = &token {
                    server.notify(
                        "notifications/progress",
                        json!({"progressToken": token,
                        "progress": progress, "total": 100,
                        "message": format!("Completed step {progress} of 100")}),
                    );
                }
            }
            Ok(text(match token.unwrap_or(json!(0)) {
                Value::String(s) => s,
                other => other.to_string(),
            }))
        }
        "test_error_handling" => Ok(json!({"isError": true, "content": [{"type": "text",
            "text": "This tool intentionally returns an error for testing"}]})),
        // Over stdio there is no stream to close: the director owns the client's streams.
        "test_reconnection" => {
            sleep(100).await;
            Ok(text(
                "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
            ))
        }
        "test_sampling" => {
            let prompt = string_arg("prompt")?;
            Ok(text(
                match server
                    .ask("sampling/createMessage", sampling(&prompt, 100))
                    .await
                {
                    Ok(r) => {
                        let answer = r
                            .pointer("/content/text")
                            .or(r.pointer("/message/content/text"));
                        format!(
                            "LLM response: {}",
                            answer.and_then(Value::as_str).unwrap_or("No response")
                        )
                    }
                    Err(e) => format!("Sampling not supported or error: {}", e.message),
                },
            ))
        }
        "test_elicitation" => {
            let message = string_arg("message")?;
            let schema = json!({"type": "object", "properties": {"response": {
                "type": "string", "description": "User's response"}}, "required": ["response"]});
            Ok(text(
                match server
                    .ask("elicitation/create", elicitation(&message, schema))
                    .await
                {
                    Ok(r) => format!("User response: {}", action_and_content(&r)),
                    Err(e) => format!("Elicitation not supported or error: {}", e.message),
                },
            ))
        }
        name @ ("test_elicitation_sep1034_defaults" | "test_elicitation_sep1330_enums") => {
            let request = if name == "test_elicitation_sep1034_defaults" {
                elicitation(
                    "Please review and update the form fields with defaults",
                    defaults_schema(),
                )
            } else {
                elicitation("Please select options from the enum fields", enums_schema())
            };
            Ok(text(
                match server.ask("elicitation/create", request).await {
                    Ok(r) => format!("Elicitation completed: {}", action_and_content(&r)),
                    Err(e) => format!("Elicitation not supported or error: {}", e.message),
                },
            ))
        }
        "json_schema_2020_12_tool" => Ok(text(format!(
            "JSON Schema 2020-12 tool called with: {args}"
        ))),
        "test_missing_capability" => {
            if lock(&state.client_capabilities).get("sampling").is_none() {
                return Err(
                    ErrorObject::new(-32021, "MissingRequiredClientCapabilityError")
                        .with_data(json!({"requiredCapabilities": {"sampling": {}}})),
                );
            }
            // A 2025 server that needs sampling uses it: a gateway in front of it answers a
            // client that did not declare sampling with -32021.
            server
                .ask("sampling/createMessage", sampling("Say hello", 10))
                .await?;
            Ok(text("Success"))
        }
        "test_input_required_result_elicitation" => {
            // Asked under the name the suite expects to answer (`user_name`).
            let schema = json!({"type": "object", "properties": {"name": {"type": "string"}},
                "required": ["name"]});
            let r = server
                .ask_as(
                    json!("user_name"),
                    "elicitation/create",
                    elicitation("What is your name?", schema),
                )
                .await?;
            let name = r["content"]["name"].as_str().unwrap_or("unknown");
            Ok(text(format!("Hello, {name}!")))
        }
        "test_input_required_result_sampling" => {
            let r = server
                .ask(
                    "sampling/createMessage",
                    sampling("What is the capital of France?", 100),
                )
                .await?;
            let answer = r.pointer("/content/text").and_then(Value::as_str);
            Ok(text(format!(
                "Sampling result: {}",
                answer.unwrap_or("no response")
            )))
        }
        "test_input_required_result_list_roots" => {
            let roots = roots(server).await?;
            Ok(text(format!("Found {roots} root(s)")))
        }
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
            let r = server
                .ask("elicitation/create", elicitation("Please confirm", schema))
                .await?;
            Ok(text(
                match (params["name"].as_str(), r.pointer("/content/ok")) {
                    (Some("test_input_required_result_tampered_state"), _) => {
                        "integrity-ok: state verified"
                    }
                    (_, Some(Value::Bool(true))) => "state-ok: requestState validated",
                    _ => "not confirmed",
                },
            ))
        }
        "test_input_required_result_multiple_inputs" => {
            // Asked at once, as a 2026 server batches them in one InputRequiredResult.
            let sample = server.ask(
                "sampling/createMessage",
                sampling("Generate a greeting", 50),
            );
            let (name, greeting, roots) = futures::join!(
                elicit_text(server, "What is your name?", "name"),
                sample,
                roots(server)
            );
            let greeting = greeting?;
            let greeting = greeting.pointer("/content/text").and_then(Value::as_str);
            Ok(text(format!(
                "Name: {}; Greeting: {}; Roots: {}",
                name?,
                greeting.unwrap_or("Hello there!"),
                roots?
            )))
        }
        "test_input_required_result_multi_round" => {
            let name = elicit_text(server, "Step 1: What is your name?", "name").await?;
            let color =
                elicit_text(server, "Step 2: What is your favorite color?", "color").await?;
            Ok(text(format!(
                "Multi-round complete for {name} who likes {color}"
            )))
        }
        "test_input_required_result_capabilities" => {
            // Asks for each input it can use; one the client cannot give (-32021 from the
            // gateway in front, or not declared here) is done without.
            fn usable<T>(r: Result<T, ErrorObject>) -> Result<bool, ErrorObject> {
                match r {
                    Err(e) if e.code == MISSING_CAPABILITY => Ok(false),
                    Err(e) => Err(e),
                    Ok(_) => Ok(true),
                }
            }
            let capabilities = lock(&state.client_capabilities).clone();
            let mut received = Vec::new();
            if capabilities.get("elicitation").is_some()
                && usable(elicit_text(server, "Elicitation input", "value").await)?
            {
                received.push("elicit_input");
            }
            if capabilities.get("sampling").is_some()
                && usable(
                    server
                        .ask("sampling/createMessage", sampling("Sample request", 50))
                        .await,
                )?
            {
                received.push("sample_input");
            }
            Ok(text(if received.is_empty() {
                "No supported capabilities declared".to_string()
            } else {
                format!("capabilities-ok: received {}", received.join(","))
            }))
        }
        "test_streaming_elicitation" => {
            if let Some(token) = params.pointer("/_meta/progressToken") {
                server.notify(
                    "notifications/progress",
                    json!({"progressToken": token, "progress": 50, "total": 100}),
                );
            }
            Ok(text("Streaming complete"))
        }
        // Logs only when the client asked for logs (a level set, here or per request).
        "test_logging_tool" => {
            let asked = params
                .pointer("/_meta/io.modelcontextprotocol~1logLevel")
                .is_some();
            if asked || lock(&state.log_level).is_some() {
                log(
                    server,
                    state,
                    "info",
                    json!("Diagnostic trace logging activated"),
                );
            }
            Ok(text("Logging evaluated"))
        }
        "test_custom_headers" => Ok(text("Custom headers received")),
        "greet" => Ok(text(format!(
            "Hello, {}!",
            params["arguments"]["name"].as_str().unwrap_or("world")
        ))),
        "slow_compute" => {
            let seconds = params["arguments"]["seconds"].as_f64().unwrap_or(1.0);
            tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 60.0))).await;
            let label = params["arguments"]["label"].as_str().unwrap_or("compute");
            Ok(text(format!("{label}: done after {seconds} s")))
        }
        "failing_job" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(json!({"content": [{"type": "text", "text": "the job failed"}], "isError": true}))
        }
        "protocol_error_job" => Err(ErrorObject::internal("the job broke")),
        "confirm_delete" => {
            let file = params["arguments"]["filename"].as_str().unwrap_or("file");
            let confirmed = elicit_text(server, &format!("Delete {file}?"), "confirm").await?;
            Ok(text(format!("Deleted {file} ({confirmed})")))
        }
        "multi_input" => {
            let (a, b) = futures::join!(
                elicit_text(server, "First answer?", "first"),
                elicit_text(server, "Second answer?", "second")
            );
            Ok(text(format!("Answers: {}, {}", a?, b?)))
        }
        "test_tool_with_task" => {
            let name = elicit_text(server, "What is your name?", "user_name").await?;
            Ok(text(format!("Hello, {name}! (from a task)")))
        }
        "test_trigger_tool_change" => {
            state.added_tools.fetch_add(1, Ordering::Relaxed);
            server.notify("notifications/tools/list_changed", json!({}));
            Ok(text("Mutation triggered"))
        }
        "test_trigger_prompt_change" => {
            state.added_prompts.fetch_add(1, Ordering::Relaxed);
            server.notify("notifications/prompts/list_changed", json!({}));
            Ok(text("Mutation triggered"))
        }
        other => Err(ErrorObject::invalid_params(format!(
            "Tool {other} not found"
        ))),
    }
}

fn sampling(prompt: &str, max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": max_tokens})
}

fn elicitation(message: &str, requested_schema: Value) -> Value {
    json!({"message": message, "requestedSchema": requested_schema})
}

/// `action=accept, content={...}`, as the reference server reports an elicitation result.
fn action_and_content(r: &Value) -> String {
    let content = r.get("content").cloned().unwrap_or(json!({}));
    format!(
        "action={}, content={content}",
        r["action"].as_str().unwrap_or_default()
    )
}

/// Asks the user for one string field; "unknown" when not given.
async fn elicit_text(server: &Server, message: &str, field: &str) -> Result<String, ErrorObject> {
    let schema =
        json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]});
    let r = server
        .ask("elicitation/create", elicitation(message, schema))
        .await?;
    Ok(r["content"][field]
        .as_str()
        .unwrap_or("unknown")
        .to_string())
}

/// How many roots the client has.
async fn roots(server: &Server) -> Result<usize, ErrorObject> {
    let r = server.ask("roots/list", json!({})).await?;
    Ok(r["roots"].as_array().map_or(0, Vec::len))
}

/// SEP-1034: a default for every primitive type.
fn defaults_schema() -> Value {
    json!({"type": "object", "required": [], "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {"type": "string", "description": "User status",
            "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "description": "Verification status", "default": true},
    }})
}

/// SEP-1330: the five enum variants.
fn enums_schema() -> Value {
    let titled = |titles: [&str; 3]| -> Vec<Value> {
        titles
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"const": format!("value{}", i + 1), "title": t}))
            .collect()
    };
    json!({"type": "object", "required": [], "properties": {
        "untitledSingle": {"type": "string", "description": "Select one option",
            "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "description": "Select one option with titles",
            "oneOf": titled(["First Option", "Second Option", "Third Option"])},
        "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array", "description": "Select multiple options",
            "minItems": 1, "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "description": "Select multiple options with titles",
            "minItems": 1, "maxItems": 3,
            "items": {"anyOf": titled(["First Choice", "Second Choice", "Third Choice"])}},
    }})
}

fn resources() -> Vec<Value> {
    json!([
        {"uri": "test://static-text", "name": "static-text", "title": "Static Text Resource",
            "description": "A static text resource for testing", "mimeType": "text/plain"},
        {"uri": "test://static-binary", "name": "static-binary", "title": "Static Binary Resource",
            "description": "A static binary resource (image) for testing", "mimeType": "image/png"},
        {"uri": "test://watched-resource", "name": "watched-resource", "title": "Watched Resource",
            "description": "A resource that auto-updates every 3 seconds", "mimeType": "text/plain"},
        {"uri": "test://stateless-static-text", "name": "Stateless Static Text",
            "description": "A static text resource served on the draft path", "mimeType": "text/plain"},
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
}

fn read(uri: &str) -> Result<Value, ErrorObject> {
    let text = |mime: &str, text: String| json!({"uri": uri, "mimeType": mime, "text": text});
    let content = match uri {
        "test://static-text" => text(
            "text/plain",
            "This is the content of the static text resource.".into(),
        ),
        "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": IMAGE}),
        "test://watched-resource" => text("text/plain", "Watched resource content".into()),
        "test://stateless-static-text" => text(
            "text/plain",
            "Static text content from the stateless draft path.".into(),
        ),
        _ => match uri
            .strip_prefix("test://template/")
            .and_then(|rest| rest.strip_suffix("/data"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => text(
                "application/json",
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                    .to_string(),
            ),
            // SEP-2164: an unknown resource is invalid params, naming the uri.
            None => {
                return Err(
                    ErrorObject::invalid_params(format!("Resource {uri} not found"))
                        .with_data(json!({"uri": uri})),
                );
            }
        },
    };
    Ok(json!({"contents": [content], "ttlMs": 300000, "cacheScope": "private"}))
}

fn prompts() -> Vec<Value> {
    let arg = |name: &str, description: &str| json!({"name": name, "description": description, "required": true});
    json!([
        {"name": "test_simple_prompt", "title": "Simple Test Prompt",
            "description": "A simple prompt without arguments"},
        {"name": "test_prompt_with_arguments", "title": "Prompt With Arguments",
            "description": "A prompt with required arguments",
            "arguments": [arg("arg1", "First test argument"), arg("arg2", "Second test argument")]},
        {"name": "test_prompt_with_embedded_resource", "title": "Prompt With Embedded Resource",
            "description": "A prompt that includes an embedded resource",
            "arguments": [arg("resourceUri", "URI of the resource to embed")]},
        {"name": "test_prompt_with_image", "title": "Prompt With Image",
            "description": "A prompt that includes image content"},
        {"name": "test_input_required_result_prompt",
            "description": "MRTR: prompt that requires elicitation input"},
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
}

async fn prompt(server: &Server, params: &Value) -> Result<Value, ErrorObject> {
    let arg = |k: &str| {
        params["arguments"][k]
            .as_str()
            .ok_or_else(|| ErrorObject::invalid_params(format!("missing argument {k}")))
    };
    let user = |content: Value| json!({"role": "user", "content": content});
    let user_text = |t: String| user(json!({"type": "text", "text": t}));
    let messages = match params["name"].as_str().unwrap_or_default() {
        "test_simple_prompt" => vec![user_text("This is a simple prompt for testing.".into())],
        "test_prompt_with_arguments" => vec![user_text(format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            arg("arg1")?,
            arg("arg2")?
        ))],
        "test_prompt_with_embedded_resource" => vec![
            user(
                json!({"type": "resource", "resource": {"uri": arg("resourceUri")?,
                "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
            ),
            user_text("Please process the embedded resource above.".into()),
        ],
        "test_prompt_with_image" => vec![
            user(json!({"type": "image", "data": IMAGE, "mimeType": "image/png"})),
            user_text("Please analyze the image above.".into()),
        ],
        "test_input_required_result_prompt" => {
            let context =
                elicit_text(server, "What context should the prompt use?", "context").await?;
            vec![user_text(format!("Prompt with context: {context}"))]
        }
        other => {
            return Err(ErrorObject::invalid_params(format!(
                "Prompt {other} not found"
            )));
        }
    };
    Ok(json!({"messages": messages}))
}
