//! The actions the host puts to the policy chain, declared once: each
//! kind's subject, target, price, estimate and attributes. Every action the
//! host builds comes from its kind's [`ActionKind::action`], which refuses
//! an attribute the kind does not declare, and `docs/actions.md` is this
//! table rendered ([`document`]; a test keeps the file equal to it). A
//! policy author reads there what each kind carries.
//!
//! An artifact may also ask the chain about actions of its own (the
//! `policy` import): those carry what the artifact gives, with the subject
//! set to its principal and `via-artifact` added by the host.

use crate::bindings::{Action, Attribute, Usage};

/// One kind of action: what each of its fields holds.
#[derive(Debug)]
pub struct ActionKind {
    /// `kind`, as policies match it.
    pub kind: &'static str,
    /// When the host asks.
    pub when: &'static str,
    /// What `subject` holds.
    pub subject: &'static str,
    /// What `target` holds.
    pub target: &'static str,
    /// What `price` and `estimated` hold.
    pub amounts: &'static str,
    /// Its attributes: key and meaning.
    pub attributes: &'static [(&'static str, &'static str)],
}

/// Added to every action of an agent that belongs to a workspace (the
/// tenant is the action's own `tenant` field).
pub const WORKSPACE: (&str, &str) = ("workspace", "the subject's workspace, from its membership");

/// Added to every action taken inside a running artifact.
const VIA_ARTIFACT: (&str, &str) = ("via-artifact", "the artifact running, `owner/name@version`");

/// A call of an artifact (over the API, a task, or a nested call).
pub const INVOKE: ActionKind = ActionKind {
    kind: "invoke",
    when: "a call is admitted, before anything is held or run",
    subject: "the caller",
    target: "the artifact, `owner/name@version`",
    amounts: "price: the artifact's price; estimated: fuel, the call's fuel limit, and memory, its memory limit",
    attributes: &[
        ("owner", "the artifact's owner"),
        ("payer", "who pays the resources: the caller, the owner, or a sponsor"),
        ("resource-policy", "`caller_pays` or `owner_pays`, as the manifest says"),
        ("sponsor-grant", "the id of the sponsor grant paying, or empty"),
        ("input-bytes", "the size of the input, bytes"),
        ("export", "what is called: `run`, the function of an artifact called by function (`add`), or `http`"),
    ],
};

/// A payment between agents.
pub const TRANSFER: ActionKind = ActionKind {
    kind: "transfer",
    when: "an agent pays another over the API, or a running artifact pays in its principal's name",
    subject: "the payer (for an artifact, its principal)",
    target: "the agent paid",
    amounts: "price: the amount, when the asset is scrip (0 otherwise)",
    attributes: &[
        ("asset", "`scrip`, `fuel` or `disk_bytes` (over the API)"),
        ("transfer", "the transfer's id (over the API)"),
        ("invocation", "the running call's id (from an artifact)"),
        VIA_ARTIFACT,
    ],
};

/// An upload of an artifact.
pub const UPLOAD: ActionKind = ActionKind {
    kind: "upload",
    when: "a component is uploaded, before it is compiled",
    subject: "the manifest's owner",
    target: "the artifact, `owner/name@version`",
    amounts: "price: the manifest's price; estimated: its fuel and memory limits",
    attributes: &[("size", "the component's size, bytes"), ("resource-policy", "`caller_pays` or `owner_pays`")],
};

/// A decision on a parked action.
pub const APPROVE: ActionKind = ActionKind {
    kind: "approve",
    when: "an approver approves a parked action, before it runs",
    subject: "the approver",
    target: "the parked action's id",
    amounts: "none",
    attributes: &[
        ("action-kind", "the kind of the parked action"),
        ("action-target", "its target"),
        ("requested-by", "its subject, who asked"),
    ],
};

/// A file opened by a running artifact.
pub const FILE_OPEN: ActionKind = ActionKind {
    kind: "file-open",
    when: "a running artifact opens a file in its directory",
    subject: "the artifact's principal",
    target: "the path, relative to the artifact's `/`",
    amounts: "none",
    attributes: &[("mode", "`read` or `write`"), VIA_ARTIFACT],
};

/// An outgoing HTTP request of a running artifact (refused unless a rule
/// allows it).
pub const HTTP_REQUEST: ActionKind = ActionKind {
    kind: "http-request",
    when: "a running artifact sends an HTTP request (denied unless a rule allows it)",
    subject: "the artifact's principal",
    target: "`host:port`",
    amounts: "none",
    attributes: &[("method", "the HTTP method"), ("url", "the URL, without user info or query"), VIA_ARTIFACT],
};

/// A connection into the host's own network (refused unless a rule
/// allows it).
pub const HTTP_CONNECT: ActionKind = ActionKind {
    kind: "http-connect",
    when: "a request's host resolves to a loopback, private or link-local address (denied unless a rule allows it)",
    subject: "the artifact's principal",
    target: "the address, `ip:port`",
    amounts: "none",
    attributes: &[
        ("host", "the host name the request named"),
        ("address-class", "`loopback`, `private`, `link-local`, ..."),
        VIA_ARTIFACT,
    ],
};

/// A task queued by a running artifact.
pub const TASK_SUBMIT: ActionKind = ActionKind {
    kind: "task-submit",
    when: "a running artifact queues a task",
    subject: "the artifact's principal",
    target: "the artifact to run, or `capability:NAME`",
    amounts: "none",
    attributes: &[("priority", "`critical`, `high`, `normal` or `low`"), VIA_ARTIFACT],
};

/// A language-model request of a running artifact (the `llm` import).
pub const LLM: ActionKind = ActionKind {
    kind: "llm",
    when: "a running artifact asks a language model, before any token is held; once per provider tried",
    subject: "the artifact's principal",
    target: "`provider/model`",
    amounts: "estimated: llm-tokens, the prompt's estimated tokens plus the request's `max-tokens`",
    attributes: &[
        ("provider", "the provider, as the operator named it"),
        ("model", "the model id"),
        ("provider-host", "the provider's host name, `host:port`"),
        ("route", "`named`, or the routing mode: `standard`, `cost_optimized`, ..."),
        ("estimated-tokens", "the tokens held for it: the prompt's estimate plus `max-tokens`"),
        ("payer", "who pays the tokens"),
        VIA_ARTIFACT,
    ],
};

/// Every kind the host asks about.
pub const ALL: [&ActionKind; 9] =
    [&INVOKE, &TRANSFER, &UPLOAD, &APPROVE, &FILE_OPEN, &HTTP_REQUEST, &HTTP_CONNECT, &TASK_SUBMIT, &LLM];

impl ActionKind {
    /// An action of this kind. Every attribute must be one the kind
    /// declares (a test build panics on one that is not).
    pub fn action(
        &self,
        subject: impl Into<String>,
        target: impl Into<String>,
        attributes: Vec<(&str, String)>,
        price: u64,
        estimated: Usage,
    ) -> Action {
        for (key, _) in &attributes {
            debug_assert!(
                self.attributes.iter().any(|(k, _)| k == key),
                "the `{}` action does not declare the attribute `{key}`: add it to `actions.rs`",
                self.kind
            );
        }
        Action {
            kind: self.kind.into(),
            subject: subject.into(),
            tenant: None,
            target: target.into(),
            attributes: attributes.into_iter().map(|(key, value)| Attribute { key: key.into(), value }).collect(),
            price,
            estimated,
        }
    }
}

/// The fields every action has, beside its kind's attributes.
pub const FIELDS: [&str; 5] = ["price", "kind", "subject", "target", "tenant"];

/// Check rules against the action kinds: a rule whose `action` names no
/// kind but is a near miss of one (`transfers`), or a condition on a field
/// no kind it matches has (`amount` on a transfer, whose amount is its
/// `price`), would silently never apply: refused, naming what exists.
/// Rules for kinds only guests ask about (spelled unlike any built-in
/// kind) are left alone.
pub fn check_rules(rules: &[fuelhost_policy::rules::Rule]) -> Result<(), String> {
    use fuelhost_policy::rules::glob;
    for rule in rules {
        let kinds: Vec<&ActionKind> = ALL.iter().copied().filter(|k| glob(&rule.action, k.kind)).collect();
        if kinds.is_empty() {
            if let Some(near) = ALL.iter().find(|k| edit_distance(&rule.action, k.kind) <= 2) {
                return Err(format!(
                    "rule `{}`: action `{}` is no action kind; did you mean `{}`? (kinds: {})",
                    rule.name,
                    rule.action,
                    near.kind,
                    ALL.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
                ));
            }
            continue;
        }
        for condition in &rule.when {
            let field = condition.field.as_str();
            let known = FIELDS.contains(&field)
                || field == WORKSPACE.0
                || kinds.iter().any(|k| k.attributes.iter().any(|(key, _)| *key == field));
            if !known {
                let mut valid: Vec<&str> = FIELDS.to_vec();
                valid.push(WORKSPACE.0);
                for key in kinds.iter().flat_map(|k| k.attributes.iter().map(|(key, _)| *key)) {
                    if !valid.contains(&key) {
                        valid.push(key);
                    }
                }
                let hint = if field == "amount" { " (an amount of scrip is the action's `price`)" } else { "" };
                return Err(format!(
                    "rule `{}`: `{field}` is no field of a `{}` action{hint}; its fields: {} (docs/actions.md)",
                    rule.name,
                    rule.action,
                    valid.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Levenshtein distance, for near misses.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `docs/actions.md`: every kind as a section with its attributes' table.
pub fn document() -> String {
    let mut out = String::from(
        "# The actions policies judge\n\n\
         Generated from `host/src/actions.rs` (a test checks this file against it; \
         `FUELHOST_WRITE_DOCS=1 cargo test -p fuelhost actions` writes it). Every action has a `kind`, a \
         `subject` (the agent acting), a `tenant` (the subject's, when it has one), a `target`, `attributes`, \
         a `price` (scrip it moves) and `estimated` usage (what it may consume at most). Declarative rules \
         match on the kind, subject, target and attributes; plugins get the whole action.\n\n",
    );
    out.push_str(&format!(
        "Every kind also carries `{}` ({}) when the subject belongs to one. An artifact may ask about kinds of \
         its own (the `policy` import): the host sets the subject to the artifact's principal and adds \
         `{}` ({}).\n",
        WORKSPACE.0, WORKSPACE.1, VIA_ARTIFACT.0, VIA_ARTIFACT.1
    ));
    for kind in ALL {
        out.push_str(&format!("\n## `{}`\n\nAsked when {}.\n\n", kind.kind, kind.when));
        out.push_str(&format!(
            "- **subject**: {}\n- **target**: {}\n- **amounts**: {}\n\n",
            kind.subject, kind.target, kind.amounts
        ));
        out.push_str("| attribute | holds |\n| --- | --- |\n");
        for (key, meaning) in kind.attributes {
            out.push_str(&format!("| `{key}` | {meaning} |\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {

    fn rules(toml: &str) -> Vec<fuelhost_policy::rules::Rule> {
        fuelhost_policy::rules::RuleSet::from_toml(toml).unwrap().rules().to_vec()
    }

    #[test]
    fn rules_that_could_never_apply_are_refused_naming_what_exists() {
        let amount = check_rules(&rules(
            "[[rule]]\nname = \"big\"\neffect = \"require_approval\"\naction = \"transfer\"\napprovers = [\"carol\"]\n\
             when = [{ field = \"amount\", greater_than = 5 }]\n",
        ))
        .unwrap_err();
        assert!(
            amount.contains("`amount` is no field") && amount.contains("`price`") && amount.contains("asset"),
            "{amount}"
        );
        let typo =
            check_rules(&rules("[[rule]]\nname = \"t\"\neffect = \"deny\"\naction = \"transfers\"\nreason = \"no\"\n"))
                .unwrap_err();
        assert!(typo.contains("did you mean `transfer`"), "{typo}");
        // Fields of any kind the glob matches, and kinds only guests ask about.
        check_rules(&rules(
            "[[rule]]\nname = \"a\"\neffect = \"deny\"\naction = \"*\"\nreason = \"no\"\n\
             when = [{ field = \"payer\", equals = \"bob\" }]\n\
             [[rule]]\nname = \"b\"\neffect = \"deny\"\naction = \"summarize-request\"\nreason = \"no\"\n\
             when = [{ field = \"words\", greater_than = 5 }]\n",
        ))
        .unwrap();
    }
    use super::*;

    #[test]
    fn the_document_of_the_actions_is_this_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/actions.md");
        let expected = document();
        if std::env::var_os("FUELHOST_WRITE_DOCS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let found = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            found == expected,
            "docs/actions.md differs from host/src/actions.rs: run `FUELHOST_WRITE_DOCS=1 cargo test -p fuelhost \
             actions` and commit the file"
        );
    }

    #[test]
    fn kinds_are_distinct_and_attributes_declared_once() {
        for (i, kind) in ALL.iter().enumerate() {
            assert!(ALL[..i].iter().all(|k| k.kind != kind.kind), "{} twice", kind.kind);
            for (j, (key, _)) in kind.attributes.iter().enumerate() {
                assert!(kind.attributes[..j].iter().all(|(k, _)| k != key), "{}: `{key}` twice", kind.kind);
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not declare the attribute `colour`")]
    #[cfg(debug_assertions)]
    fn an_undeclared_attribute_is_refused() {
        INVOKE.action("bob", "alice/x@1", vec![("colour", "blue".into())], 0, crate::bindings::NO_USAGE);
    }
}
