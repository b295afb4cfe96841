//! The merged catalog clients see: every running upstream's tools, prompts, resources and
//! templates, with tool and prompt names mapped by [`crate::naming`]. Rebuilt (off the request
//! path) whenever a catalog or the configuration changes.

use crate::naming::{NameTable, Strategy};
use crate::profile::Filter;
use crate::upstream::pool::{Kind, Pool};
use mcp_director_api::models::{Config, Naming};
use serde_json::Value;
use std::collections::HashMap;

/// One listed item and the server it comes from.
pub type Item = (String, Value);

#[derive(Default, Debug)]
pub struct View {
    /// Tools with their exposed names.
    pub tools: Vec<Item>,
    pub tool_names: NameTable,
    /// Exposed tool name → its index in `tools` (the definition a call is checked against).
    tool_index: HashMap<String, usize>,
    pub prompts: Vec<Item>,
    pub prompt_names: NameTable,
    pub resources: Vec<Item>,
    pub templates: Vec<Item>,
    /// Resource URI → server.
    resource_owner: HashMap<String, String>,
    /// (template text before its first `{`, server), longest first.
    template_owner: Vec<(String, String)>,
}

impl View {
    /// The view of sessions in `project` (or in none): each server through the instance such a
    /// session uses.
    pub fn build(config: &Config, pool: &Pool, project: Option<&str>) -> View {
        let strategy = match config.settings.naming {
            Naming::Prefix => Strategy::Prefix,
            Naming::Compat => Strategy::Compat,
        };
        let upstreams: Vec<_> = config
            .servers
            .keys()
            .filter_map(|server| pool.instance(server, project))
            .collect();
        let prefix = |server: &str| -> String {
            config
                .servers
                .get(server)
                .and_then(|s| s.prefix.clone())
                .unwrap_or_else(|| server.to_string())
        };
        let named = |kind: Kind| -> (Vec<Item>, NameTable) {
            let mut entries = Vec::new();
            let mut items = Vec::new();
            for u in &upstreams {
                for item in u.catalog(kind).iter() {
                    if let Some(name) = item.get("name").and_then(Value::as_str) {
                        entries.push((u.server.clone(), prefix(&u.server), name.to_string()));
                        items.push((u.server.clone(), item.clone()));
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
                    Some((server, item))
                })
                .collect();
            (list, table)
        };
        let (tools, tool_names) = named(Kind::Tools);
        let (prompts, prompt_names) = named(Kind::Prompts);
        let tool_index = tools
            .iter()
            .enumerate()
            .filter_map(|(i, (_, t))| Some((t.get("name")?.as_str()?.to_string(), i)))
            .collect();
        let mut view = View {
            tool_index,
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
                        .or_insert_with(|| u.server.clone());
                    view.resources.push((u.server.clone(), r.clone()));
                }
            }
            for t in u.catalog(Kind::ResourceTemplates).iter() {
                if let Some(template) = t.get("uriTemplate").and_then(Value::as_str) {
                    let fixed = template.split('{').next().unwrap_or_default().to_string();
                    view.template_owner.push((fixed, u.server.clone()));
                    view.templates.push((u.server.clone(), t.clone()));
                }
            }
        }
        view.template_owner
            .sort_by_key(|(fixed, _)| std::cmp::Reverse(fixed.len()));
        view
    }

    /// The server owning a resource URI: a listed resource, else the template with the
    /// longest matching fixed prefix.
    /// The definition of the tool exposed as `name`.
    pub fn tool(&self, name: &str) -> Option<&Value> {
        self.tool_index.get(name).map(|&i| &self.tools[i].1)
    }

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

    /// The items of a list that `filter` lets a session see. Tools and prompts are matched by
    /// exposed name, resources by URI, templates by URI template.
    pub fn visible(items: &[Item], key: &str, filter: &Filter) -> Vec<Value> {
        items
            .iter()
            .filter(|(server, item)| {
                let name = item.get(key).and_then(Value::as_str).unwrap_or_default();
                filter.sees(server, name)
            })
            .map(|(_, item)| item.clone())
            .collect()
    }

    /// The list_changed notifications a move from `self` to `next` warrants for a session with
    /// `filter`: only changes it can see.
    pub fn changes(&self, next: &View, filter: &Filter) -> Vec<&'static str> {
        let differs = |a: &[Item], b: &[Item], key: &str| {
            Self::visible(a, key, filter) != Self::visible(b, key, filter)
        };
        let mut out = Vec::new();
        if differs(&self.tools, &next.tools, "name") {
            out.push("notifications/tools/list_changed");
        }
        if differs(&self.prompts, &next.prompts, "name") {
            out.push("notifications/prompts/list_changed");
        }
        if differs(&self.resources, &next.resources, "uri")
            || differs(&self.templates, &next.templates, "uriTemplate")
        {
            out.push("notifications/resources/list_changed");
        }
        out
    }
}
