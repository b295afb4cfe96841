//! `generated/api`: the admin API's models (typify over `components/schemas`), one handler trait
//! with an async method per `operationId`, and `router()` building the axum routes for any
//! implementation of it. Paths, methods, extractors and success statuses all come from the spec;
//! operations tagged `admin` are generated, the others (OAuth, MCP transport, observability) are
//! routed by hand in `src/` because their bodies are not JSON-in/JSON-out.

use crate::{Files, format_rust, manifest, rewrite_refs};
use anyhow::{Context, Result, bail};
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};
use serde_json::{Value, json};
use std::path::PathBuf;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// The typify settings shared by the server models (here) and nothing else: maps are
/// `BTreeMap`s so a configuration written back to disk is ordered and diffable.
fn models(spec: &Value) -> Result<TokenStream> {
    let mut schemas = spec
        .pointer("/components/schemas")
        .cloned()
        .context("spec has no components/schemas")?;
    rewrite_refs(&mut schemas, "#/components/schemas/");
    let root: schemars::schema::RootSchema = serde_json::from_value(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": schemas,
    }))?;
    let mut settings = typify::TypeSpaceSettings::default();
    settings
        .with_struct_builder(false)
        .with_derive("PartialEq".to_string())
        .with_map_type("::std::collections::BTreeMap");
    let mut space = typify::TypeSpace::new(&settings);
    space.add_root_schema(root)?;
    let mut file: syn::File = syn::parse2(space.to_stream())?;
    syn::visit_mut::VisitMut::visit_file_mut(&mut EmptyObjectDefaults, &mut file);
    Ok(file.into_token_stream())
}

/// typify writes `default: {}` on a struct-typed property as a literal with every field
/// `Default::default()`, which ignores the fields' own defaults (`bind` would be ""). The
/// struct's `Default` impl has them right, so such a default function calls it instead.
struct EmptyObjectDefaults;

impl syn::visit_mut::VisitMut for EmptyObjectDefaults {
    fn visit_item_fn_mut(&mut self, f: &mut syn::ItemFn) {
        let [syn::Stmt::Expr(syn::Expr::Struct(lit), None)] = f.block.stmts.as_slice() else {
            return;
        };
        let all_default = !lit.fields.is_empty()
            && lit.fields.iter().all(|field| {
                field.expr.to_token_stream().to_string().replace(' ', "") == "Default::default()"
            });
        if all_default {
            f.block = syn::parse_quote!({ ::std::default::Default::default() });
        }
    }
}

struct Operation {
    id: String,
    method: String,
    path: String,
    doc: String,
    path_params: Vec<String>,
    /// `(name, Rust type)` of each query parameter; all optional.
    query_params: Vec<(String, TokenStream)>,
    body: Option<TokenStream>,
    status: u16,
    response: TokenStream,
    basic_auth: bool,
}

pub fn generate(spec: &Value, files: &mut Files) -> Result<()> {
    let ops = operations(spec)?;
    let models = models(spec)?;

    let trait_methods = ops.iter().map(|op| {
        let name = format_ident!("{}", op.id);
        // One attribute per line: prettyplease then writes `///` lines, not an indented
        // `/** */` block that rustdoc would take for a code block.
        let doc = op.doc.lines().map(|l| format!(" {l}"));
        let params = op.path_params.iter().map(|p| {
            let p = format_ident!("{p}");
            quote! { #p: String }
        });
        let body = op.body.as_ref().map(|b| quote! { body: #b });
        let query = (!op.query_params.is_empty()).then(|| {
            let ty = query_type(&op.id);
            quote! { query: #ty }
        });
        let ret = &op.response;
        quote! {
            #(#[doc = #doc])*
            fn #name(&self, #(#params,)* #query #body) -> impl Future<Output = Result<#ret, ApiError>> + Send;
        }
    });

    let handlers = ops.iter().map(|op| {
        let name = format_ident!("{}", op.id);
        let ret = &op.response;
        let status = op.status;
        let params: Vec<_> = op.path_params.iter().map(|p| format_ident!("{p}")).collect();
        let path_extractor = match params.len() {
            0 => quote! {},
            1 => quote! { path: Result<Path<String>, PathRejection>, },
            _ => {
                let tys = params.iter().map(|_| quote! { String });
                quote! { path: Result<Path<(#(#tys),*)>, PathRejection>, }
            }
        };
        let path_bind = match params.len() {
            0 => quote! {},
            1 => {
                let p = &params[0];
                quote! { let Path(#p) = path.map_err(|e| ApiError::bad_request(e.body_text()))?; }
            }
            _ => quote! { let Path((#(#params),*)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?; },
        };
        let (body_extractor, body_bind, body_arg) = match &op.body {
            Some(b) => (
                quote! { body: Result<Json<#b>, JsonRejection>, },
                quote! { let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?; },
                quote! { body },
            ),
            None => (quote! {}, quote! {}, quote! {}),
        };
        let (query_extractor, query_bind, query_arg) = if op.query_params.is_empty() {
            (quote! {}, quote! {}, quote! {})
        } else {
            let ty = query_type(&op.id);
            (
                quote! { query: Result<::axum::extract::Query<#ty>, ::axum::extract::rejection::QueryRejection>, },
                quote! { let ::axum::extract::Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?; },
                quote! { query, },
            )
        };
        let auth = if op.basic_auth {
            quote! { api.authenticate(&headers).await?; }
        } else {
            quote! { let _ = &headers; }
        };
        quote! {
            async fn #name<T: AdminApi>(
                State(api): State<Arc<T>>,
                headers: HeaderMap,
                #path_extractor
                #query_extractor
                #body_extractor
            ) -> Result<(StatusCode, Json<#ret>), ApiError> {
                #auth
                #path_bind
                #query_bind
                #body_bind
                let out = api.#name(#(#params,)* #query_arg #body_arg).await?;
                Ok((StatusCode::from_u16(#status).expect("status from the spec"), Json(out)))
            }
        }
    });

    let query_structs = ops
        .iter()
        .filter(|op| !op.query_params.is_empty())
        .map(|op| {
            let ty = query_type(&op.id);
            let doc = format!("Query parameters of `{}`.", op.id);
            let fields = op.query_params.iter().map(|(name, t)| {
                let f = format_ident!("{name}");
                quote! { pub #f: Option<#t> }
            });
            quote! {
                #[doc = #doc]
                #[derive(::serde::Deserialize, Debug, Clone, Default, PartialEq)]
                #[serde(deny_unknown_fields)]
                pub struct #ty { #(#fields,)* }
            }
        });
    let mut by_path: Vec<(String, Vec<&Operation>)> = Vec::new();
    for op in &ops {
        match by_path.iter_mut().find(|(p, _)| *p == op.path) {
            Some((_, v)) => v.push(op),
            None => by_path.push((op.path.clone(), vec![op])),
        }
    }
    let routes = by_path.iter().map(|(path, ops)| {
        let mut chain = quote! { ::axum::routing::MethodRouter::new() };
        for op in ops {
            let m = format_ident!("{}", op.method);
            let h = format_ident!("{}", op.id);
            chain = quote! { #chain.#m(#h::<T>) };
        }
        quote! { .route(#path, #chain) }
    });
    let route_list = ops.iter().map(|op| {
        let m = op.method.to_uppercase();
        let p = &op.path;
        quote! { (#m, #p) }
    });

    let lib = quote! {
        //! The admin API of MCP Director, generated from `spec/openapi.yaml`: the request and
        //! response models, the [`AdminApi`] handler trait (one method per `operationId`) and
        //! [`router`], which serves any implementation of it.
        #![allow(clippy::all, clippy::pedantic, unused_imports, irrefutable_let_patterns)]

        use ::axum::extract::rejection::{JsonRejection, PathRejection};
        use ::axum::extract::{Path, State};
        use ::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
        use ::axum::response::{IntoResponse, Response};
        use ::axum::{Json, Router};
        use ::std::future::Future;
        use ::std::sync::Arc;

        /// Request and response bodies, from `components/schemas`.
        pub mod models {
            #models
        }

        /// An error answer: a status and the spec's shared `Error` body.
        #[derive(Debug, Clone, PartialEq)]
        pub struct ApiError {
            pub status: StatusCode,
            pub body: models::Error,
        }

        impl ApiError {
            pub fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
                Self {
                    status,
                    body: models::Error {
                        error: error.to_string(),
                        error_description: Some(description.into()),
                    },
                }
            }
            pub fn bad_request(description: impl Into<String>) -> Self {
                Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
            }
            pub fn unauthorized(description: impl Into<String>) -> Self {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", description)
            }
            pub fn not_found(description: impl Into<String>) -> Self {
                Self::new(StatusCode::NOT_FOUND, "not_found", description)
            }
            pub fn conflict(description: impl Into<String>) -> Self {
                Self::new(StatusCode::CONFLICT, "conflict", description)
            }
            pub fn internal(description: impl Into<String>) -> Self {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", description)
            }
        }

        impl ::std::fmt::Display for ApiError {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{} {}", self.status.as_u16(), self.body.error)?;
                if let Some(d) = &self.body.error_description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
        }

        impl ::std::error::Error for ApiError {}

        impl IntoResponse for ApiError {
            fn into_response(self) -> Response {
                let mut response = (self.status, Json(self.body)).into_response();
                if self.status == StatusCode::UNAUTHORIZED {
                    // The spec's `basicAuth` security scheme.
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"mcp-director\", charset=\"UTF-8\""),
                    );
                }
                response
            }
        }

        #(#query_structs)*

        /// One async method per admin `operationId` of the spec. Implemented in `src/admin/`.
        pub trait AdminApi: Send + Sync + 'static {
            /// Checks the `basicAuth` security requirement; called before every operation
            /// that declares it, before its body is read.
            fn authenticate(&self, headers: &HeaderMap) -> impl Future<Output = Result<(), ApiError>> + Send;
            #(#trait_methods)*
        }

        #(#handlers)*

        /// `(METHOD, path)` of every generated route, in spec order.
        pub const ROUTES: &[(&str, &str)] = &[#(#route_list),*];

        /// The admin routes of the spec, served by `api`.
        pub fn router<T: AdminApi>(api: Arc<T>) -> Router {
            Router::new()
                #(#routes)*
                .with_state(api)
        }
    };
    files.insert(PathBuf::from("generated/api/src/lib.rs"), format_rust(lib)?);
    files.insert(
        PathBuf::from("generated/api/Cargo.toml"),
        manifest(
            "mcp-director-api",
            "MCP Director admin API: models, handler trait and axum router from spec/openapi.yaml",
            &[
                "axum = { workspace = true }",
                "regress = { workspace = true }",
                "serde = { workspace = true }",
                "serde_json = { workspace = true }",
            ],
        ),
    );
    Ok(())
}

fn operations(spec: &Value) -> Result<Vec<Operation>> {
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .context("spec has no paths")?;
    let global_security = spec.get("security");
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let tagged_admin = op
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|t| t.iter().any(|t| t == "admin"));
            if !tagged_admin {
                continue;
            }
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .with_context(|| format!("{method} {path} has no operationId"))?
                .to_string();
            let ctx = || format!("operation {id}");
            let doc = [op.get("summary"), op.get("description")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n\n");

            let mut path_params = Vec::new();
            let mut query_params = Vec::new();
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let p = resolve(spec, p)?;
                match p.get("in").and_then(Value::as_str) {
                    Some("path") => path_params.push(
                        p.get("name")
                            .and_then(Value::as_str)
                            .with_context(ctx)?
                            .to_string(),
                    ),
                    Some("query") => {
                        let name = p.get("name").and_then(Value::as_str).with_context(ctx)?;
                        let schema = p.get("schema").with_context(ctx)?;
                        let ty = match (
                            schema.get("type").and_then(Value::as_str),
                            schema.get("format").and_then(Value::as_str),
                        ) {
                            (Some("integer"), Some("uint64" | "uint32")) => quote! { u64 },
                            (Some("integer"), _) => quote! { i64 },
                            (Some("boolean"), _) => quote! { bool },
                            (Some("string"), _) => quote! { String },
                            other => bail!("{}: unsupported query parameter type {other:?}", ctx()),
                        };
                        query_params.push((name.to_string(), ty));
                    }
                    other => bail!("{}: unsupported parameter location {other:?}", ctx()),
                }
            }

            let body = match op.get("requestBody") {
                None => None,
                Some(b) => {
                    let schema = resolve(spec, b)?
                        .pointer("/content/application~1json/schema")
                        .with_context(|| format!("{}: request body is not JSON", ctx()))?;
                    Some(rust_type(schema).with_context(ctx)?)
                }
            };

            let responses = op
                .get("responses")
                .and_then(Value::as_object)
                .with_context(ctx)?;
            let success: Vec<_> = responses
                .iter()
                .filter(|(code, _)| code.starts_with('2'))
                .collect();
            let [(code, response)] = success.as_slice() else {
                bail!("{}: needs exactly one 2xx response", ctx());
            };
            let status: u16 = code.parse().with_context(ctx)?;
            let response =
                match resolve(spec, response)?.pointer("/content/application~1json/schema") {
                    Some(schema) => rust_type(schema).with_context(ctx)?,
                    None => quote! { () },
                };

            let security = op.get("security").or(global_security);
            let basic_auth = security
                .and_then(Value::as_array)
                .is_some_and(|reqs| reqs.iter().any(|r| r.get("basicAuth").is_some()));

            out.push(Operation {
                id,
                method: method.to_string(),
                path: path.clone(),
                doc,
                path_params,
                query_params,
                body,
                status,
                response,
                basic_auth,
            });
        }
    }
    Ok(out)
}

/// Follows a local `$ref` (parameters, request bodies, responses).
fn resolve<'a>(spec: &'a Value, v: &'a Value) -> Result<&'a Value> {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => spec
            .pointer(r.trim_start_matches('#'))
            .with_context(|| format!("dangling $ref {r}")),
        None => Ok(v),
    }
}

/// `get_analytics` → `GetAnalyticsQuery`.
fn query_type(operation_id: &str) -> proc_macro2::Ident {
    let camel: String = operation_id
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format_ident!("{camel}Query")
}

fn rust_type(schema: &Value) -> Result<TokenStream> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().context("empty $ref")?;
        let ident = format_ident!("{name}");
        return Ok(quote! { models::#ident });
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => {
            let item = rust_type(schema.get("items").context("array without items")?)?;
            Ok(quote! { Vec<#item> })
        }
        Some("string") => Ok(quote! { String }),
        Some("object") | None => Ok(quote! { ::serde_json::Value }),
        Some(other) => bail!("unsupported inline schema type {other}"),
    }
}
