//! The merged catalog clients see: every running upstream's tools, prompts, resources and
//! templates, with tool and prompt names mapped by [`crate::naming`]. Rebuilt (off the request
//! path) whenever a catalog or the configuration changes; each item is rendered to JSON once
//! then, so a list request only filters and concatenates.

use crate::jsonrpc::{ErrorObject, Notification, raw};
use crate::naming::{NameTable, Strategy};
use crate::profile::Filter;
use crate::upstream::pool::{Kind, Pool};
use mcp_director_api::models::{Config, Naming};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// One listed item as clients see it.
#[derive(Debug)]
pub struct Item {
    /// The configured server it comes from.
    pub server: String,
    /// What filters match: the exposed name (tools, prompts), the URI or the URI template.
    pub key: String,
    pub value: Value,
    /// `value`, rendered.
    pub json: Box<RawValue>,
}

impl Item {
    fn new(server: String, key: String, value: Value) -> Self {
        Self {
            json: raw(&value),
            server,
            key,
            value,
        }
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.server == other.server && self.json.get() == other.json.get()
    }
}

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
                    item["name"] = Value::String(exposed.clone());
                    Some(Item::new(server, exposed, item))
                })
                .collect();
            (list, table)
        };
        let (tools, tool_names) = named(Kind::Tools);
        let (prompts, prompt_names) = named(Kind::Prompts);
        let tool_index = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.clone(), i))
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
                    view.resources
                        .push(Item::new(u.server.clone(), uri.to_string(), r.clone()));
                }
            }
            for t in u.catalog(Kind::ResourceTemplates).iter() {
                if let Some(template) = t.get("uriTemplate").and_then(Value::as_str) {
                    let fixed = template.split('{').next().unwrap_or_default().to_string();
                    view.template_owner.push((fixed, u.server.clone()));
                    view.templates.push(Item::new(
                        u.server.clone(),
                        template.to_string(),
                        t.clone(),
                    ));
                }
            }
        }
        view.template_owner
            .sort_by_key(|(fixed, _)| std::cmp::Reverse(fixed.len()));
        view
    }

    /// The definition of the tool exposed as `name`.
    pub fn tool(&self, name: &str) -> Option<&Value> {
        self.tool_index.get(name).map(|&i| &self.tools[i].value)
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

    /// The items of a list that `filter` lets a session see.
    pub fn visible<'a>(items: &'a [Item], filter: &'a Filter) -> impl Iterator<Item = &'a Item> {
        items.iter().filter(|i| filter.sees(&i.server, &i.key))
    }

    /// The list_changed notifications a move from `self` to `next` warrants for a session with
    /// `filter`: only changes it can see.
    pub fn changes(&self, next: &View, filter: &Filter) -> Vec<&'static str> {
        let differs =
            |a: &[Item], b: &[Item]| !Self::visible(a, filter).eq(Self::visible(b, filter));
        let mut out = Vec::new();
        if differs(&self.tools, &next.tools) {
            out.push("notifications/tools/list_changed");
        }
        if differs(&self.prompts, &next.prompts) {
            out.push("notifications/prompts/list_changed");
        }
        if differs(&self.resources, &next.resources) || differs(&self.templates, &next.templates) {
            out.push("notifications/resources/list_changed");
        }
        out
    }
}

impl super::Gateway {
    /// The view of sessions in no project (the admin API's).
    pub fn view(&self) -> Arc<View> {
        self.view_for(None)
    }

    /// Waits (at most `limit`) until every server has connected or failed, so that a client
    /// that starts the director and asks at once (a desktop client over stdio) sees the whole
    /// catalog rather than an empty one.
    pub async fn started(&self, limit: std::time::Duration) {
        let upstreams = self.pool.all();
        let settled = futures::future::join_all(upstreams.iter().map(|u| u.settled()));
        let _ = tokio::time::timeout(limit, settled).await;
        self.rebuild_view();
    }

    pub fn view_for(&self, project: Option<&str>) -> Arc<View> {
        self.views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&project.map(str::to_string))
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn rebuild_view(&self) {
        let config = self.settings();
        let keys = std::iter::once(None).chain(config.projects.keys().cloned().map(Some));
        let next: HashMap<Option<String>, Arc<View>> = keys
            .map(|p| {
                let view = Arc::new(View::build(&config, &self.pool, p.as_deref()));
                (p, view)
            })
            .collect();
        let previous = std::mem::replace(
            &mut *self.views.write().unwrap_or_else(|e| e.into_inner()),
            next.clone(),
        );
        // Sessions of one project and profile see the same thing: compared once for all.
        let mut changes: HashMap<(Option<String>, Option<String>), Vec<&'static str>> =
            HashMap::new();
        for s in self.sessions() {
            if !s.negotiated().initialized {
                continue;
            }
            let (Some(old), Some(new)) = (previous.get(&s.project), next.get(&s.project)) else {
                continue;
            };
            let methods = changes
                .entry((s.project.clone(), s.profile.clone()))
                .or_insert_with(|| old.changes(new, &s.filter));
            for method in methods.iter() {
                s.outbound.send(
                    Notification {
                        method: method.to_string(),
                        params: None,
                    }
                    .into(),
                );
            }
        }
    }
}

/// Items per page of a merged list.
pub const PAGE: usize = 500;

/// One page of the items `filter` lets a session see, as the result `{key: [...],
/// nextCursor?}`: pre-rendered items concatenated, nothing parsed or cloned. The cursor is an
/// opaque encoding of an offset into the visible items.
pub fn page(
    items: &[Item],
    filter: &Filter,
    key: &str,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    #[derive(serde::Deserialize)]
    struct P {
        cursor: Option<String>,
    }
    let p: P = crate::jsonrpc::params(params)?;
    let start = match p.cursor {
        None => 0,
        Some(c) => {
            super::decode_cursor(&c).ok_or_else(|| ErrorObject::invalid_params("Invalid cursor"))?
        }
    };
    let mut visible = View::visible(items, filter).skip(start);
    let mut out = String::with_capacity(64);
    out.push_str("{\"");
    out.push_str(key);
    out.push_str("\":[");
    let mut taken = 0;
    for item in visible.by_ref().take(PAGE) {
        if taken > 0 {
            out.push(',');
        }
        out.push_str(item.json.get());
        taken += 1;
    }
    if taken == 0 && start > 0 && View::visible(items, filter).count() < start {
        return Err(ErrorObject::invalid_params("Invalid cursor"));
    }
    out.push(']');
    if visible.next().is_some() {
        out.push_str(",\"nextCursor\":\"");
        out.push_str(&super::encode_cursor(start + taken));
        out.push('"');
    }
    out.push('}');
    RawValue::from_string(out).map_err(|e| ErrorObject::internal(format!("list rendering: {e}")))
}
