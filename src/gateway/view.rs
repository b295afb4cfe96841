//! The merged catalog clients see: every running upstream's tools, prompts, resources and
//! templates, with tool and prompt names mapped by [`crate::naming`]. Rebuilt (off the request
//! path) whenever a catalog or the configuration changes.

use crate::naming::{NameTable, Strategy};
use crate::upstream::pool::{Kind, Pool};
use mcp_director_api::models::{Config, Naming};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Default, Debug)]
pub struct View {
    pub tools: Vec<Value>,
    pub tool_names: NameTable,
    pub prompts: Vec<Value>,
    pub prompt_names: NameTable,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
    /// Resource URI → server.
    resource_owner: HashMap<String, String>,
    /// (template text before its first `{`, server), longest first.
    template_owner: Vec<(String, String)>,
}

impl View {
    pub fn build(config: &Config, pool: &Pool) -> View {
        let strategy = match config.settings.naming {
            Naming::Prefix => Strategy::Prefix,
            Naming::Compat => Strategy::Compat,
        };
        let upstreams = pool.all();
        let prefix = |server: &str| -> String {
            config
                .servers
                .get(server)
                .and_then(|s| s.prefix.clone())
                .unwrap_or_else(|| server.to_string())
        };
        let named = |kind: Kind| -> (Vec<Value>, NameTable) {
            let mut entries = Vec::new();
            let mut items = Vec::new();
            for u in &upstreams {
                for item in u.catalog(kind).iter() {
                    if let Some(name) = item.get("name").and_then(Value::as_str) {
                        entries.push((u.name.clone(), prefix(&u.name), name.to_string()));
                        items.push((u.name.clone(), item.clone()));
                    }
                }
            }
            let table = NameTable::build(strategy, entries);
            for (exposed, server, name) in &table.collisions {
                tracing::warn!(%exposed, %server, %name, "name collision: hidden");
            }
            let list = items
                .into_iter()
                .filter_map(|(server, mut item)| {
                    let name = item.get("name")?.as_str()?.to_string();
                    let exposed = table.exposed(&server, &name)?.to_string();
                    item["name"] = Value::String(exposed);
                    Some(item)
                })
                .collect();
            (list, table)
        };
        let (tools, tool_names) = named(Kind::Tools);
        let (prompts, prompt_names) = named(Kind::Prompts);
        let mut view = View {
            tools,
            tool_names,
            prompts,
            prompt_names,
            ..View::default()
        };
        for u in &upstreams {
            for r in u.catalog(Kind::Resources).iter() {
                if let Some(uri) = r.get("uri").and_then(Value::as_str) {
                    view.resource_owner
                        .entry(uri.to_string())
                        .or_insert_with(|| u.name.clone());
                    view.resources.push(r.clone());
                }
            }
            for t in u.catalog(Kind::ResourceTemplates).iter() {
                if let Some(template) = t.get("uriTemplate").and_then(Value::as_str) {
                    let fixed = template.split('{').next().unwrap_or_default().to_string();
                    view.template_owner.push((fixed, u.name.clone()));
                    view.templates.push(t.clone());
                }
            }
        }
        view.template_owner
            .sort_by_key(|(fixed, _)| std::cmp::Reverse(fixed.len()));
        view
    }

    /// The server owning a resource URI: a listed resource, else the template with the
    /// longest matching fixed prefix.
    pub fn resource_server(&self, uri: &str) -> Option<&str> {
        self.resource_owner
            .get(uri)
            .map(String::as_str)
            .or_else(|| {
                self.template_owner
                    .iter()
                    .find(|(fixed, _)| !fixed.is_empty() && uri.starts_with(fixed.as_str()))
                    .map(|(_, s)| s.as_str())
            })
    }

    /// The list_changed notifications a move from `self` to `next` warrants.
    pub fn changes(&self, next: &View) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.tools != next.tools {
            out.push("notifications/tools/list_changed");
        }
        if self.prompts != next.prompts {
            out.push("notifications/prompts/list_changed");
        }
        if self.resources != next.resources || self.templates != next.templates {
            out.push("notifications/resources/list_changed");
        }
        out
    }
}
