//! The API's contract, made precise in one table: the grammar of every
//! path and query parameter, the statuses every route may answer, and the
//! links from an operation that creates something to those that use it.
//! [`tighten`] writes the table into the OpenAPI document the handlers'
//! annotations produce; [`check_params`] holds every request to the same
//! table before its handler runs, so the document and the server accept
//! exactly the same requests (request bodies are held to theirs by their
//! types: `grammar`).

use axum::extract::{MatchedPath, RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use fuelhost::HostLimits;

use super::grammar::{
    is_artifact_id, ACTION_KINDS, AGENT_ID, ARTIFACT_ID, CLIENT_ID, KEY_ID, MAX_INTEGER, NAME_VERSION,
};
use super::ApiError;

/// What a parameter may be.
#[derive(Clone, Copy)]
enum Grammar {
    /// A string matching a pattern, checked by a function.
    Text { pattern: &'static str, check: fn(&str) -> bool, what: &'static str },
    /// A page size: an integer from 1 to 10,000.
    PageSize,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

fn agent_id(s: &str) -> bool {
    fuelhost::AgentId::new(s).is_ok()
}

fn client_id(s: &str) -> bool {
    fuelhost::check_id("", s).is_ok()
}

fn name_version(s: &str) -> bool {
    is_artifact_id(&format!("x/{s}"))
}

fn key_id(s: &str) -> bool {
    s.strip_prefix("k_")
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

const AGENT: Grammar =
    Grammar::Text { pattern: AGENT_ID, check: agent_id, what: "an agent id (1 to 64 of a-z, 0-9, '-', '_')" };
const ID: Grammar = Grammar::Text {
    pattern: CLIENT_ID,
    check: client_id,
    what: "an id (1 to 128 of A-Z, a-z, 0-9, '.', '_', ':', '-', not starting with '.')",
};

/// The grammar of parameter `name` of the route `template`.
fn grammar(template: &str, name: &str) -> Option<Grammar> {
    Some(match name {
        "id" if template.starts_with("/v1/agents/") => AGENT,
        "id" => ID,
        "owner" | "agent" => AGENT,
        "name" if template.starts_with("/v1/policy/plugins/") => AGENT,
        "name_version" => Grammar::Text { pattern: NAME_VERSION, check: name_version, what: "name@version" },
        "key_id" => Grammar::Text { pattern: KEY_ID, check: key_id, what: "a key id (k_ and 12 hex digits)" },
        "after" if template == "/v1/keys" => Grammar::Text { pattern: KEY_ID, check: key_id, what: "a key id" },
        "artifact" => {
            Grammar::Text { pattern: ARTIFACT_ID, check: is_artifact_id, what: "an artifact id (owner/name@version)" }
        }
        "limit" => Grammar::PageSize,
        "asset" if template == "/v1/top" => Grammar::OneOf(&["fuel", "disk_bytes", "llm_tokens"]),
        "decision" => Grammar::OneOf(&["allow", "deny", "require_approval"]),
        _ => return None,
    })
}

impl Grammar {
    /// The parameter's schema in the document.
    fn schema(self) -> Value {
        match self {
            Grammar::Text { pattern, .. } => json!({"type": "string", "pattern": pattern}),
            Grammar::PageSize => json!({"type": "integer", "minimum": 1, "maximum": 10_000}),
            Grammar::OneOf(words) => json!({"type": "string", "enum": words}),
        }
    }

    /// Why `value` does not fit, if it does not.
    fn refuse(self, name: &str, value: &str) -> Option<String> {
        let fits = match self {
            Grammar::Text { check, .. } => check(value),
            Grammar::PageSize => value.parse::<u64>().is_ok_and(|n| (1..=10_000).contains(&n)),
            Grammar::OneOf(words) => words.contains(&value),
        };
        if fits {
            return None;
        }
        let wanted = match self {
            Grammar::Text { what, .. } => what.to_string(),
            Grammar::PageSize => "a page size from 1 to 10000".to_string(),
            Grammar::OneOf(words) => format!("one of {}", words.join(", ")),
        };
        Some(format!("parameter `{name}` is `{}`; it must be {wanted}", value.escape_debug()))
    }
}

/// Hold a request's path and query parameters to the table (middleware,
/// after routing): `400` saying which parameter is wrong and what it must
/// be.
pub(super) async fn check_params(req: Request, next: Next) -> Response {
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let mut parts = req.into_parts();
    let path = match axum::RequestPartsExt::extract::<RawPathParams>(&mut parts.0).await {
        Ok(params) => params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.0.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    for (name, value) in path.iter().chain(&query) {
        if let Some(why) = grammar(&template, name).and_then(|g| g.refuse(name, value)) {
            return ApiError::bad_request(why).into_response();
        }
    }
    next.run(Request::from_parts(parts.0, parts.1)).await
}

/// Write the table into the document: each parameter's grammar, the
/// statuses any route may answer besides its own, the links.
pub(super) fn tighten(doc: &mut Value, limits: &HostLimits, max_memory: u64) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (template, item) in paths.iter_mut() {
        let Some(ops) = item.as_object_mut() else { continue };
        for (_method, op) in ops.iter_mut() {
            let secured = op.get("security").is_some();
            let has_body = op.get("requestBody").is_some();
            let mut has_path_params = false;
            let mut has_params = false;
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    has_params = true;
                    has_path_params |= p["in"] == "path";
                    if let Some(g) = grammar(template, &name) {
                        p["schema"] = g.schema();
                    }
                }
            }
            let responses = op["responses"].as_object_mut().expect("every operation has responses");
            let error = json!({"description": "an error: `{error: {code, message}}`",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
            let mut add = |code: &str, when: bool| {
                if when && !responses.contains_key(code) {
                    responses.insert(code.to_string(), error.clone());
                }
            };
            add("400", has_params || has_body);
            add("401", secured);
            add("404", has_path_params);
            add("408", has_body);
            add("413", has_body);
            add("429", secured);
        }
    }
    add_links(paths);
    tighten_bodies(paths);
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        tighten_schemas(schemas);
        schemas.insert("Manifest".into(), manifest_schema(limits, max_memory));
    }
}

/// The bodies that are not JSON: components (bytes) and rules (TOML).
fn tighten_bodies(paths: &mut Map<String, Value>) {
    let binary = json!({"type": "string", "format": "binary"});
    if let Some(content) =
        paths.get_mut("/v1/policy/plugins/{name}").and_then(|p| p.pointer_mut("/put/requestBody/content"))
    {
        content["application/wasm"] = json!({"schema": binary});
        content["multipart/form-data"] = json!({"schema": {"type": "object", "required": ["component"],
            "additionalProperties": false, "properties": {"component": binary}}});
    }
    // An upload is described as the form with the manifest as JSON; the
    // raw body with the manifest in a header (docs/api.md) cannot be: no
    // schema ties a header to a body's media type.
    if let Some(body) = paths.get_mut("/v1/artifacts").and_then(|p| p.pointer_mut("/post/requestBody")) {
        body["content"] = json!({"multipart/form-data": {
            "schema": {"type": "object", "required": ["manifest", "component"], "additionalProperties": false,
                "properties": {"manifest": {"$ref": "#/components/schemas/Manifest"}, "component": binary}},
            "encoding": {"manifest": {"contentType": "application/json"}, "component": {"contentType": "application/wasm"}},
        }});
    }
    if let Some(body) = paths.get_mut("/v1/policy/rules").and_then(|p| p.pointer_mut("/put/requestBody")) {
        body["required"] = json!(false);
    }
}

/// Standard padded base64 whose last symbol carries no stray bits (what
/// the server's decoder takes).
const BASE64: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// The request bodies' constraints the derived schemas cannot say.
fn tighten_schemas(schemas: &mut Map<String, Value>) {
    // Every integer is a 64-bit signed one at most.
    for schema in schemas.values_mut() {
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            for prop in props.values_mut() {
                let integer = match &prop["type"] {
                    Value::String(t) => t == "integer",
                    Value::Array(ts) => ts.iter().any(|t| t == "integer"),
                    _ => false,
                };
                if integer && prop.get("maximum").is_none() {
                    prop["maximum"] = json!(MAX_INTEGER);
                }
            }
        }
    }
    rule_schemas(schemas);
    let set = |schemas: &mut Map<String, Value>, schema: &str, property: &str, constraints: Value| {
        if let Some(p) = schemas.get_mut(schema).and_then(|s| s.pointer_mut(&format!("/properties/{property}"))) {
            if let (Some(p), Some(c)) = (p.as_object_mut(), constraints.as_object()) {
                p.extend(c.clone());
            }
        }
    };
    // Not all white space, as Rust's `trim` sees it (Unicode White_Space;
    // a regex's `\s` differs between dialects).
    let non_blank = json!({"pattern": "[^\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"});
    set(schemas, "Revoke", "reason", non_blank.clone());
    set(schemas, "Reject", "reason", non_blank);
    set(schemas, "Extend", "additional_ms", json!({"minimum": 1}));
    set(schemas, "Heartbeat", "ttl_ms", json!({"minimum": 1, "maximum": 86_400_000}));
    set(schemas, "Heartbeat", "status", json!({"maxLength": 256}));
    set(schemas, "PolicyCheck", "kind", json!({"enum": ACTION_KINDS}));
    set(schemas, "NewAllocation", "priority", json!({"minimum": 1, "maximum": 10}));
    set(schemas, "NewAllocation", "soft_threshold_percent", json!({"minimum": 1, "maximum": 100}));
    set(schemas, "NewAllocation", "hard_threshold_percent", json!({"minimum": 1, "maximum": 100}));
    set(schemas, "NewAllocation", "duration_ms", json!({"minimum": 1}));
    set(
        schemas,
        "NewAllocation",
        "quotas",
        json!({"type": "object", "minProperties": 1, "propertyNames": {"enum": RESOURCES},
               "additionalProperties": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}}),
    );
    set(
        schemas,
        "NewAllocation",
        "period",
        json!({"type": ["object", "null"], "additionalProperties": false, "required": ["length_ms", "rollover"],
               "properties": {"length_ms": {"type": "integer", "minimum": 1000, "maximum": MAX_INTEGER},
                              "rollover": {"type": "string", "enum": ["reset", "carry_over"]}}}),
    );
    set(
        schemas,
        "NewAgent",
        "config",
        json!({"oneOf": [{"$ref": "#/components/schemas/AgentConfig"}, {"type": "null"}]}),
    );
    if let Some(config) = schemas.get_mut("NewAgent").and_then(|s| s.pointer_mut("/properties/config")) {
        if let Some(c) = config.as_object_mut() {
            c.remove("type");
        }
    }
    // A workspace belongs to a tenant.
    if let Some(s) = schemas.get_mut("NewAgent").and_then(Value::as_object_mut) {
        s.insert("if".into(), json!({"required": ["workspace"], "properties": {"workspace": {"type": "string"}}}));
        s.insert("then".into(), json!({"required": ["tenant"], "properties": {"tenant": {"type": "string"}}}));
    }
    // Base64 as the server decodes it: padded, canonical last symbol.
    let base64 = json!({"pattern": BASE64, "contentEncoding": "base64"});
    set(schemas, "Invoke", "input_base64", base64.clone());
    set(schemas, "Submit", "input_base64", base64);
    set(schemas, "Submit", "capability", json!({"pattern": "^[a-z0-9_-]{1,64}$"}));
    set(schemas, "Submit", "priority", json!({"enum": ["critical", "high", "normal", "low", null]}));
    set(
        schemas,
        "Submit",
        "route",
        json!({"enum": ["standard", "cost_optimized", "latency_optimized", "quality_optimized", null]}),
    );
    set(schemas, "Submit", "depends_on", json!({"uniqueItems": true, "maxItems": 64}));
    // An artifact or a capability: exactly one, not null.
    if let Some(s) = schemas.get_mut("Submit").and_then(Value::as_object_mut) {
        s.insert(
            "oneOf".into(),
            json!([{"required": ["artifact"], "properties": {"artifact": {"type": "string"}}},
                   {"required": ["capability"], "properties": {"capability": {"type": "string"}}}]),
        );
    }
    // A function (with its arguments), a WAVE call or an input: one of
    // them; arguments only with a function.
    if let Some(s) = schemas.get_mut("Invoke").and_then(Value::as_object_mut) {
        let both = |one: &str, other: &str| {
            json!({"not": {"required": [one, other],
                "properties": {one: {"type": "string"}, other: {"type": "string"}}}})
        };
        s.insert(
            "allOf".into(),
            json!([both("export", "input"), both("export", "input_base64"), both("call", "export"),
                   both("call", "input"), both("call", "input_base64"),
                   {"if": {"required": ["args"], "properties": {"args": {"not": {"type": "null"}}}},
                    "then": {"required": ["export"], "properties": {"export": {"type": "string"}}}}]),
        );
    }
    // Text or base64, not both.
    let one_input = json!({"not": {"required": ["input", "input_base64"],
        "properties": {"input": {"type": "string"}, "input_base64": {"type": "string"}}}});
    for schema in ["Invoke", "Submit"] {
        if let Some(s) = schemas.get_mut(schema).and_then(Value::as_object_mut) {
            s.extend(one_input.as_object().cloned().unwrap_or_default());
        }
    }
}

/// An artifact's manifest, with this host's maxima (`Manifest::validate`
/// and `validate_within`).
fn manifest_schema(limits: &HostLimits, max_memory: u64) -> Value {
    let name = json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"});
    let up_to = |min: u64, max: u64| json!({"type": "integer", "minimum": min, "maximum": max.min(MAX_INTEGER as u64)});
    json!({
        "description": "What an uploader declares about an artifact (JSON here; a form part may also be TOML).",
        "type": "object", "additionalProperties": false, "required": ["owner", "name", "version", "resource_policy"],
        "properties": {
            "owner": {"type": "string", "pattern": super::grammar::AGENT_ID},
            "name": name,
            "version": {"type": "string", "pattern": "^[A-Za-z0-9.+-]{1,32}$"},
            "price": up_to(0, limits.max_price),
            "resource_policy": {"type": "string", "enum": ["caller_pays", "owner_pays"]},
            "description": {"type": "string"},
            "limits": {"type": "object", "additionalProperties": false, "properties": {
                "fuel": up_to(1, limits.max_fuel),
                "memory_bytes": up_to(64 << 10, max_memory),
                "timeout_ms": up_to(1, limits.max_timeout_ms.min(3_600_000)),
                "input_bytes": up_to(0, limits.max_input_bytes),
                "output_bytes": up_to(0, limits.max_output_bytes),
                "log_bytes": up_to(0, limits.max_log_bytes),
                "log_lines": up_to(0, limits.max_log_lines),
                "nested_calls": up_to(0, limits.max_nested_calls),
            }},
            "metering": {"type": "string", "enum": ["fuel", "cpu_time"]},
            "capabilities": {"type": "array", "maxItems": 16, "items": name},
            "quality": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
        },
    })
}

/// The resources an allocation (or an agent's `limits`) may give a quota.
const RESOURCES: [&str; 7] =
    ["fuel", "disk_bytes", "api_calls", "llm_tokens", "budget_usd_micros", "memory_bytes", "concurrent_tasks"];

/// The policy rules (`PUT /v1/policy/rules` as JSON, an agent's
/// configuration) and the configuration an agent is registered with, as
/// `policy::rules` and `registration` read them.
fn rule_schemas(schemas: &mut Map<String, Value>) {
    let integer = json!({"type": "integer", "minimum": 0, "maximum": MAX_INTEGER});
    let optional_integer = json!({"type": ["integer", "null"], "minimum": 0, "maximum": MAX_INTEGER});
    let optional_text = json!({"type": ["string", "null"]});
    // Exactly one test, that is exactly one of them present and not null.
    let tests = ["equals", "matches", "greater_than", "less_than"];
    let one_test: Vec<Value> = tests
        .iter()
        .map(|t| {
            let kind = if t.ends_with("than") { "integer" } else { "string" };
            json!({"required": [t], "properties": {*t: {"type": kind}}})
        })
        .collect();
    schemas.insert("Condition".into(), json!({
        "description": "A condition on one field of the action (`price`, `kind`, `subject`, `target`, `tenant`, or an attribute key): exactly one test.",
        "type": "object", "additionalProperties": false, "required": ["field"],
        "properties": {"field": {"type": "string"}, "equals": optional_text, "matches": optional_text,
                       "greater_than": optional_integer, "less_than": optional_integer},
        "oneOf": one_test,
    }));
    schemas.insert("Rule".into(), json!({
        "description": "A policy rule. `action`, `subject` and `target` are globs (`*` any run, `?` one character).",
        "type": "object", "additionalProperties": false, "required": ["name", "effect"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "effect": {"type": "string", "enum": ["allow", "deny", "require_approval"]},
            "action": {"type": "string"}, "subject": {"type": "string"}, "target": {"type": "string"},
            "when": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
            "priority": {"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX},
            "reason": optional_text,
            "approvers": {"type": "array", "items": {"type": "string"}},
            "scope": {"type": "string", "pattern": "^(global|tenant:[\\s\\S]+|workspace:[\\s\\S]*/[\\s\\S]*|agent:[\\s\\S]+)$"},
        },
        "allOf": [
            {"if": {"required": ["effect"], "properties": {"effect": {"const": "deny"}}},
             "then": {"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1}}}},
            {"if": {"required": ["effect"], "properties": {"effect": {"const": "require_approval"}}},
             "then": {"required": ["approvers"], "properties": {"approvers": {"minItems": 1}}}},
        ],
    }));
    // Written by name (`policy::rules::by_name`): the fields but the name.
    let mut fields = schemas["Rule"].clone();
    fields["description"] = json!("A policy rule's fields; its name is its key.");
    if let Some(props) = fields["properties"].as_object_mut() {
        props.remove("name");
    }
    fields["required"] = json!(["effect"]);
    schemas.insert("RuleFields".into(), fields);
    let rules = json!({"type": "object", "propertyNames": {"minLength": 1},
        "additionalProperties": {"$ref": "#/components/schemas/RuleFields"},
        "description": "Rules by name; on equal priority the first name (in byte order) decides."});
    if let Some(p) = schemas.get_mut("RuleSetBody").and_then(|s| s.pointer_mut("/properties/rules")) {
        *p = rules.clone();
    }
    schemas.insert("AgentConfig".into(), json!({
        "description": "What an agent is registered with: a budget minted now, the quotas of an allocation activated for it, rules scoped to it (their `scope` is set to the agent, their names prefixed with it).",
        "type": "object", "additionalProperties": false,
        "properties": {
            "budget": {"type": "object", "additionalProperties": false,
                "properties": {"scrip": integer, "fuel": integer, "disk_bytes": integer, "llm_tokens": integer}},
            "limits": {"type": "object", "propertyNames": {"enum": RESOURCES}, "additionalProperties": integer},
            "rules": rules,
        },
    }));
}

/// The links of one response: path, method, status, where the id is in
/// the response, and the (link name, operation id) pairs that take it.
type Links = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

/// Links from the operations that create something to those that use its
/// id, for clients (and stateful testing) to follow.
fn add_links(paths: &mut Map<String, Value>) {
    let links: &[Links] = &[
        (
            "/v1/agents",
            "post",
            "201",
            "$response.body#/id",
            &[("ShowAgent", "show_agent"), ("CreateKey", "create_key"), ("Heartbeat", "heartbeat")],
        ),
        (
            "/v1/allocations",
            "post",
            "201",
            "$response.body#/id",
            &[
                ("ShowAllocation", "show_allocation"),
                ("ApproveAllocation", "approve_allocation"),
                ("ActivateAllocation", "activate_allocation"),
                ("ExtendAllocation", "extend_allocation"),
                ("RevokeAllocation", "revoke_allocation"),
            ],
        ),
        (
            "/v1/grants",
            "post",
            "201",
            "$response.body#/grant/id",
            &[("ShowGrant", "show_grant"), ("RevokeGrant", "revoke_grant")],
        ),
        ("/v1/tasks", "post", "200", "$response.body#/id", &[("ShowTask", "show"), ("CancelTask", "cancel")]),
        ("/v1/keys", "post", "201", "$response.body#/key_id", &[("RevokeKey", "revoke_key")]),
    ];
    for (path, method, status, value, targets) in links {
        let Some(response) =
            paths.get_mut(*path).and_then(|p| p.get_mut(*method)).and_then(|o| o["responses"].get_mut(*status))
        else {
            continue;
        };
        let param = if *path == "/v1/keys" { "key_id" } else { "id" };
        let mut map = Map::new();
        for (name, operation) in targets.iter() {
            map.insert(name.to_string(), json!({"operationId": operation, "parameters": {param: value}}));
        }
        response["links"] = Value::Object(map);
    }
}
