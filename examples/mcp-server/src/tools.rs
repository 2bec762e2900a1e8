//! The example's two tools: `whoami` says what the verified token says (who, which agent, which
//! scopes, through which chain of agents), `echo` answers with its argument. Scopes are enforced
//! before rmcp sees a request (see [`crate::policy`]); the tools only read what the layer verified.

use std::sync::Arc;

use axum::http::request::Parts;
use mandate_resource::VerifiedToken;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};

pub const WHOAMI: &str = "whoami";
pub const ECHO: &str = "echo";

/// The MCP server handler: stateless, one per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tools;

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("schemas are JSON objects"),
    }
}

fn catalogue() -> Vec<Tool> {
    let whoami = Tool::new(
        WHOAMI,
        "Who the access token is for: subject, client, scopes and the chain of agents acting for the subject",
        schema(json!({ "type": "object", "properties": {}, "additionalProperties": false })),
    )
    .with_title("Who am I?")
    .with_annotations(ToolAnnotations::new().read_only(true))
    .with_raw_output_schema(schema(json!({
        "type": "object",
        "properties": {
            "subject": { "type": "string" },
            "client_id": { "type": "string" },
            "scopes": { "type": "array", "items": { "type": "string" } },
            "delegation_chain": { "type": "array", "items": { "type": "string" } },
            "expires_at": { "type": "integer" },
            "jti": { "type": ["string", "null"] },
        },
        "required": ["subject", "client_id", "scopes", "delegation_chain", "expires_at"],
    })));
    let echo = Tool::new(
        ECHO,
        "Answers with the text it is given (needs the tools:call scope)",
        schema(json!({
            "type": "object",
            "properties": { "text": { "type": "string", "description": "What to echo" } },
            "required": ["text"],
        })),
    )
    .with_title("Echo")
    .with_annotations(ToolAnnotations::new().read_only(true));
    vec![whoami, echo]
}

/// The token the layer verified for this request. rmcp puts the HTTP request's `Parts` in the
/// request context's extensions, and mandate-resource put the verified claims in theirs.
fn verified(context: &RequestContext<RoleServer>) -> Result<&VerifiedToken, ErrorData> {
    context.extensions.get::<Parts>().and_then(|parts| parts.extensions.get::<VerifiedToken>()).ok_or_else(|| {
        // Only a wiring mistake gets here: the MCP route is always behind the layer.
        tracing::error!("a tool call reached the handler without a verified token");
        ErrorData::internal_error("the request was not authorized", None)
    })
}

fn whoami(token: &VerifiedToken) -> CallToolResult {
    CallToolResult::structured(json!({
        "subject": token.subject,
        "client_id": token.client_id,
        "scopes": token.scopes,
        "delegation_chain": token.delegation_chain(),
        "expires_at": token.expires_at,
        "jti": token.jti,
    }))
}

fn echo(arguments: Option<&JsonObject>) -> CallToolResult {
    match arguments.and_then(|a| a.get("text")).and_then(Value::as_str) {
        Some(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        // A tool-level error: the caller's model reads it and can retry with the argument.
        None => CallToolResult::error(vec![ContentBlock::text("echo needs a `text` argument (a string)")]),
    }
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("example-mcp-server", env!("CARGO_PKG_VERSION"))
                    .with_title("Example MCP server protected by mandate"),
            )
            .with_instructions("`whoami` shows what your access token says; `echo` needs the tools:call scope.")
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(catalogue()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalogue().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let token = verified(&context)?;
        // Who did what, by the token's id: never the token itself.
        tracing::info!(tool = %request.name, sub = %token.subject, client_id = %token.client_id,
            jti = token.jti.as_deref().unwrap_or("-"), "tool call");
        let result = match request.name.as_ref() {
            WHOAMI => whoami(token),
            ECHO => echo(request.arguments.as_ref()),
            other => return Err(ErrorData::invalid_params(format!("unknown tool: {other}"), None)),
        };
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_answers_with_its_argument_or_says_what_is_missing() {
        let args = json!({ "text": "hello" });
        let ok = echo(args.as_object());
        assert_eq!(ok.is_error, Some(false));
        assert_eq!(ok.content[0].as_text().unwrap().text, "hello");
        let missing = echo(None);
        assert_eq!(missing.is_error, Some(true));
        assert!(missing.content[0].as_text().unwrap().text.contains("`text`"));
    }

    #[test]
    fn the_catalogue_lists_both_tools_with_object_schemas() {
        let names: Vec<_> = catalogue().into_iter().map(|t| t.name.into_owned()).collect();
        assert_eq!(names, [WHOAMI, ECHO]);
        assert!(Tools.get_tool(ECHO).is_some_and(|t| t.input_schema["required"] == json!(["text"])));
        assert!(Tools.get_tool("nope").is_none());
    }
}
