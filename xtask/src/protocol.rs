//! `generated/protocol`: the MCP types of every protocol version, generated with typify.
//!
//! typify 0.8 mis-reads four constructs of the official schemas; `patch` rewrites them into
//! equivalent JSON Schema it handles (see ARCHITECTURE.md, "Generated code"):
//! - a `description` beside a `$ref` panics typify → keep only the `$ref`;
//! - string `const`s are dropped (so `tools/call` parses as `ping`, `"jsonrpc":"1.0"` passes)
//!   → a one-value `enum`;
//! - `anyOf` unions become structs of flattened options that re-serialise duplicate keys
//!   → `oneOf` (an untagged or tagged enum), with the catch-all `Result`/`EmptyResult` last;
//! - objects without `additionalProperties` lose undeclared keys (`$defs` in
//!   `Tool.inputSchema`, `_meta` in 2024-11-05 `tools/call` params), although JSON Schema allows
//!   them → an explicit `additionalProperties: {}`, which typify keeps in a flattened map.
//!
//! typify also drops an empty map or array on output (`"sampling": {}` vanishes, and with it a
//! declared capability); `keep_empty_collections` turns such fields into `Option`s so absent
//! and empty stay distinct.
//!
//! An `anyOf` is also reordered most-specific first (by the number of required properties of
//! each option), because the untagged enum typify emits takes the first option that parses:
//! `InputRequiredResult | CallToolResult` must try `CallToolResult` first.

use crate::{Files, format_rust, manifest, rewrite_refs};
use anyhow::{Context, Result};
use quote::{ToTokens, format_ident, quote};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

pub fn generate(root: &Path, files: &mut Files) -> Result<()> {
    let mut modules = Vec::new();
    for version in VERSIONS {
        let path = root.join(format!("spec/mcp/{version}/schema.json"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let schema: Value = serde_json::from_str(&text)?;
        let module = format!("v{}", version.replace('-', "_"));
        let code = generate_version(schema, version)
            .with_context(|| format!("generating MCP {version}"))?;
        files.insert(
            PathBuf::from(format!("generated/protocol/src/{module}.rs")),
            code,
        );
        modules.push(module);
    }

    // One feature per version: a crate compiles only the versions it uses (the director's
    // binary does not pay for all five; the tests take `all`).
    let mods = modules.iter().zip(VERSIONS).map(|(m, v)| {
        let ident = format_ident!("{m}");
        let doc = format!("MCP protocol version {v} (feature `{m}`).");
        quote! { #[doc = #doc] #[cfg(feature = #m)] pub mod #ident; }
    });
    let versions = VERSIONS;
    let lib = quote! {
        //! MCP protocol types, one module per protocol version (each behind a feature of its
        //! name; `all` enables every one), generated from the official JSON schemas in
        //! `spec/mcp/` by typify. The director forwards tool arguments and results as raw
        //! JSON; these types are for inspecting and validating messages.
        #![allow(clippy::all, clippy::pedantic, unused_imports, irrefutable_let_patterns)]
        #(#mods)*

        /// Every protocol version these modules cover, oldest first.
        pub const VERSIONS: &[&str] = &[#(#versions),*];
    };
    files.insert(
        PathBuf::from("generated/protocol/src/lib.rs"),
        format_rust(lib)?,
    );
    let mut cargo = manifest(
        "mcp-director-protocol",
        "MCP protocol types of every version, generated from the official schemas",
        &[
            "regress = { workspace = true }",
            "serde = { workspace = true }",
            "serde_json = { workspace = true }",
        ],
    );
    cargo.push_str("\n[features]\n");
    for m in &modules {
        cargo.push_str(&format!("{m} = []\n"));
    }
    let all: Vec<String> = modules.iter().map(|m| format!("\"{m}\"")).collect();
    cargo.push_str(&format!("all = [{}]\n", all.join(", ")));
    files.insert(PathBuf::from("generated/protocol/Cargo.toml"), cargo);
    Ok(())
}

fn generate_version(mut schema: Value, version: &str) -> Result<String> {
    let defs_key = if schema.get("$defs").is_some() {
        "$defs"
    } else {
        "definitions"
    };
    let defs = schema
        .get_mut(defs_key)
        .and_then(Value::as_object_mut)
        .context("schema has no definitions")?
        .clone();
    let mut defs = Value::Object(defs);
    rewrite_refs(&mut defs, "#/$defs/");
    let required: BTreeMap<String, usize> = defs
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, d)| {
            let n = d
                .get("required")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            (format!("#/definitions/{name}"), n)
        })
        .collect();
    if let Value::Object(m) = &mut defs {
        m.values_mut().for_each(|d| patch(d, &required));
    }
    let root: schemars::schema::RootSchema = serde_json::from_value(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": defs,
    }))?;

    let mut settings = typify::TypeSpaceSettings::default();
    settings
        .with_struct_builder(false)
        .with_derive("PartialEq".to_string())
        .with_map_type("::std::collections::BTreeMap");
    let mut space = typify::TypeSpace::new(&settings);
    space.add_root_schema(root)?;

    let mut names: Vec<String> = space
        .iter_types()
        .map(|t| t.name())
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    names.sort();
    names.dedup();
    let idents = names.iter().map(|n| format_ident!("{n}"));
    let mut types: syn::File = syn::parse2(space.to_stream())?;
    syn::visit_mut::VisitMut::visit_file_mut(&mut KeepEmptyCollections, &mut types);
    let doc = format!(
        "MCP {version}, from `spec/mcp/{version}/schema.json`.\n\n\
         [`roundtrip`] parses JSON as the named type and serialises it back (used by the \
         conformance tests to prove the types are lossless)."
    );
    let tokens = quote! {
        #![doc = #doc]
        #types

        /// Names of every generated type of this version.
        pub const TYPES: &[&str] = &[#(#names),*];

        /// Parse `json` as the type called `type_name` and serialise it again; `None` when no
        /// such type exists.
        pub fn roundtrip(
            type_name: &str,
            json: &str,
        ) -> ::std::option::Option<::std::result::Result<::serde_json::Value, ::serde_json::Error>> {
            Some(match type_name {
                #(#names => serde_json::from_str::<#idents>(json).and_then(|v| serde_json::to_value(&v)),)*
                _ => return None,
            })
        }
    };
    format_rust(tokens)
}

/// Rewrites the constructs typify 0.8 mis-reads in one schema and everything below it; see the
/// module docs.
fn patch(schema: &mut Value, required: &BTreeMap<String, usize>) {
    let Value::Object(map) = schema else { return };
    if map.contains_key("$ref") {
        map.retain(|k, _| k == "$ref");
        return;
    }
    if let Some(c) = map.remove("const") {
        map.insert("enum".into(), Value::Array(vec![c]));
    }
    let is_object =
        map.get("type").and_then(Value::as_str) == Some("object") || map.contains_key("properties");
    if is_object && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), json!({}));
    }
    if let Some(Value::Array(mut options)) = map.remove("anyOf") {
        let specificity = |v: &Value| {
            let r = v.get("$ref").and_then(Value::as_str).unwrap_or_default();
            std::cmp::Reverse(required.get(r).copied().unwrap_or(0))
        };
        options.sort_by_key(specificity);
        map.insert("oneOf".into(), Value::Array(options));
    }
    for (key, sub) in map.iter_mut() {
        match key.as_str() {
            // Maps whose values are schemas (the keys are names, not keywords).
            "properties" | "patternProperties" | "definitions" => {
                if let Value::Object(m) = sub {
                    m.values_mut().for_each(|s| patch(s, required));
                }
            }
            "items" | "additionalProperties" | "not" | "if" | "then" | "else" => {
                patch(sub, required)
            }
            "oneOf" | "allOf" => {
                if let Value::Array(items) = sub {
                    items.iter_mut().for_each(|s| patch(s, required));
                }
            }
            _ => {}
        }
    }
}

/// Rewrites `#[serde(default, skip_serializing_if = "…::is_empty")] f: T` as
/// `#[serde(default, skip_serializing_if = "Option::is_none")] f: Option<T>`.
struct KeepEmptyCollections;

impl syn::visit_mut::VisitMut for KeepEmptyCollections {
    fn visit_field_mut(&mut self, field: &mut syn::Field) {
        let mut hit = false;
        for attr in &mut field.attrs {
            if !attr.path().is_ident("serde") {
                continue;
            }
            let text = attr.meta.to_token_stream().to_string();
            if text.contains("skip_serializing_if") && text.contains("is_empty") {
                let rewritten = regex_lite_replace(&text);
                *attr = syn::parse_quote!(#[#rewritten]);
                hit = true;
            }
        }
        if hit {
            let ty = &field.ty;
            field.ty = syn::parse_quote!(::std::option::Option<#ty>);
        }
    }
}

/// Replaces the `skip_serializing_if = "…is_empty"` argument of a serde attribute.
fn regex_lite_replace(meta: &str) -> syn::Meta {
    let start = meta.find("skip_serializing_if").expect("checked by caller");
    let rest = &meta[start..];
    let end = rest.find("is_empty\"").expect("checked by caller") + "is_empty\"".len();
    let replaced = format!(
        "{}skip_serializing_if = \"::std::option::Option::is_none\"{}",
        &meta[..start],
        &rest[end..]
    );
    syn::parse_str(&replaced).expect("a serde attribute stays parseable")
}
