//! Which scopes an operation needs: a set for every request, plus more per MCP method
//! (`tools/call`, `resources/read`, …) and per tool (`params.name` of `tools/call`). A refusal
//! names all of them in one challenge, so a client steps up once.

use std::collections::{BTreeMap, BTreeSet};

use crate::jsonrpc::Message;

#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    always: BTreeSet<String>,
    methods: BTreeMap<String, BTreeSet<String>>,
    tools: BTreeMap<String, BTreeSet<String>>,
}

fn set<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> BTreeSet<String> {
    scopes.into_iter().map(Into::into).collect()
}

impl ScopePolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scopes every request needs.
    pub fn require<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.always.extend(set(scopes));
        self
    }

    /// More scopes for a JSON-RPC method, e.g. `"tools/call"`.
    pub fn method<I: IntoIterator<Item = S>, S: Into<String>>(mut self, method: &str, scopes: I) -> Self {
        self.methods.entry(method.to_owned()).or_default().extend(set(scopes));
        self
    }

    /// More scopes for one tool (a `tools/call` whose `params.name` is `tool`).
    pub fn tool<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tool: &str, scopes: I) -> Self {
        self.tools.entry(tool.to_owned()).or_default().extend(set(scopes));
        self
    }

    /// Whether the JSON-RPC body must be read to know what a request needs.
    pub(crate) fn reads_body(&self) -> bool {
        !self.methods.is_empty() || !self.tools.is_empty()
    }

    /// Every scope the request needs: the common ones, and those of each JSON-RPC message of its
    /// body (one message or, from older clients, a batch: every message counts).
    pub(crate) fn required(&self, messages: &[Message]) -> BTreeSet<String> {
        let mut needed = self.always.clone();
        for message in messages {
            let Message::Invocation { method, tool } = message else { continue };
            if let Some(scopes) = self.methods.get(method) {
                needed.extend(scopes.iter().cloned());
            }
            if let Some(scopes) = tool.as_ref().and_then(|t| self.tools.get(t)) {
                needed.extend(scopes.iter().cloned());
            }
        }
        needed
    }

    /// The scopes a challenge names before anything is known of the request.
    pub(crate) fn baseline(&self) -> BTreeSet<String> {
        self.always.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, tool: Option<&str>) -> Message {
        Message::Invocation { method: method.into(), tool: tool.map(Into::into) }
    }

    #[test]
    fn methods_and_tools_add_to_the_common_scopes() {
        let p = ScopePolicy::new().require(["tools:read"]).method("tools/call", ["tools:call"]).tool("wipe", ["admin"]);
        let list = call("tools/list", None);
        assert_eq!(p.required(std::slice::from_ref(&list)), set(["tools:read"]));
        assert_eq!(p.required(&[call("tools/call", Some("echo"))]), set(["tools:read", "tools:call"]));
        let wipe = call("tools/call", Some("wipe"));
        assert_eq!(p.required(std::slice::from_ref(&wipe)), set(["tools:read", "tools:call", "admin"]));
        assert_eq!(p.required(&[list, Message::Response, wipe]), set(["tools:read", "tools:call", "admin"]));
        assert_eq!(p.required(&[]), set(["tools:read"]));
    }
}
