//! Declarative policy rules: allow, deny or require approval by glob
//! patterns on an action's kind, subject and target, with conditions on its
//! price and attributes, ordered by priority. Written in TOML (or JSON) by
//! people, so parsed with `deny_unknown_fields` and checked, with errors
//! that name the line.
//!
//! ```toml
//! [[rule]]
//! name = "no-expensive-calls"
//! effect = "deny"
//! action = "invoke"
//! target = "alice/*"
//! reason = "alice's artifacts are closed to calls over 50 scrip"
//! when = [{ field = "price", greater_than = 50 }]
//!
//! [[rule]]
//! name = "bob-may"
//! effect = "allow"
//! priority = 10
//! subject = "bob"
//! ```
//!
//! **How rules decide.** A rule has a `scope`: `global` (the default),
//! `tenant:NAME`, `workspace:TENANT/NAME` or `agent:ID`; it applies only
//! to actions whose subject is in that scope (the host fills in the
//! subject's tenant and workspace). Within each level (global, tenant,
//! workspace, agent), the matching rule with the highest priority decides
//! (on a tie, the one written first), so an `allow` can be an exception to
//! a broader `deny` of its own level. Across levels **deny wins**: a more
//! specific level cannot allow what a broader one denies. Short of a deny,
//! a `require_approval` from any level applies (the most general level's
//! approvers). Otherwise the action goes past the rules on to the policy
//! plugins, which still have their say.
//!
//! **Globs**: `*` matches any run of characters (slashes included), `?`
//! exactly one; everything else matches itself.

use serde::{Deserialize, Serialize};

use crate::{Action, Decision};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Let the action past the rules.
    Allow,
    /// Refuse it, with the rule's `reason`.
    Deny,
    /// Park it until one of the rule's `approvers` approves.
    RequireApproval,
}

/// A condition on one field of the action. Exactly one test is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// `price`, `kind`, `subject`, `target`, `tenant`, or the key of an
    /// attribute (`payer`, `owner`, `resource-policy`, ...).
    pub field: String,
    /// The field equals this text.
    #[serde(default)]
    pub equals: Option<String>,
    /// The field matches this glob.
    #[serde(default)]
    pub matches: Option<String>,
    /// The field, as an integer, is greater than this.
    #[serde(default)]
    pub greater_than: Option<u64>,
    /// The field, as an integer, is less than this.
    #[serde(default)]
    pub less_than: Option<u64>,
}

/// One rule, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name; audit records name the rule that decided.
    pub name: String,
    /// What a match does.
    pub effect: Effect,
    /// Glob on the action kind. Default `*`.
    #[serde(default = "any")]
    pub action: String,
    /// Glob on the subject (the acting agent). Default `*`.
    #[serde(default = "any")]
    pub subject: String,
    /// Glob on the target. Default `*`.
    #[serde(default = "any")]
    pub target: String,
    /// All must hold. Default: none.
    #[serde(default)]
    pub when: Vec<Condition>,
    /// Higher decides first. Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Why, for `deny` (required there).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who may approve, for `require_approval` (required there).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Whose actions it governs: `global` (default), `tenant:NAME`,
    /// `workspace:TENANT/NAME` or `agent:ID`.
    #[serde(default = "global")]
    pub scope: String,
}

fn global() -> String {
    "global".into()
}

/// The scope levels, from the most general.
const LEVELS: [&str; 4] = ["global", "tenant", "workspace", "agent"];

fn scope_level(scope: &str) -> Option<usize> {
    if scope == "global" {
        return Some(0);
    }
    let (level, name) = scope.split_once(':')?;
    if name.is_empty() {
        return None;
    }
    match level {
        "tenant" => Some(1),
        "workspace" if name.contains('/') => Some(2),
        "agent" => Some(3),
        _ => None,
    }
}

fn any() -> String {
    "*".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRules {
    #[serde(default)]
    rule: Vec<toml::Spanned<Rule>>,
}

/// Rules written as a map from name to rule, the way JSON bodies and an
/// agent's configuration write them: the name is the key, so two rules
/// can never share one. They come out in name order, so on equal priority
/// the first name decides. Use with `#[serde(with = "by_name")]` on a
/// `Vec<Rule>`.
pub mod by_name {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::ser::{Error as _, SerializeMap};
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    use super::Rule;

    /// Write `rules` as `{name: {fields but the name}}`.
    pub fn serialize<S: Serializer>(rules: &[Rule], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(rules.len()))?;
        for rule in rules {
            let mut fields = serde_json::to_value(rule).map_err(S::Error::custom)?;
            if let Some(f) = fields.as_object_mut() {
                f.remove("name");
            }
            map.serialize_entry(&rule.name, &fields)?;
        }
        map.end()
    }

    /// Read `{name: {fields but the name}}`, in name order.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
        let map = BTreeMap::<String, Value>::deserialize(d)?;
        map.into_iter()
            .map(|(name, mut fields)| {
                let Some(f) = fields.as_object_mut() else {
                    return Err(D::Error::custom(format!("rule `{name}` must be an object of its fields")));
                };
                if f.contains_key("name") {
                    return Err(D::Error::custom(format!("rule `{name}`: its name is its key; leave out `name`")));
                }
                f.insert("name".into(), Value::String(name.clone()));
                serde_json::from_value::<Rule>(fields).map_err(|e| D::Error::custom(format!("rule `{name}`: {e}")))
            })
            .collect()
    }
}

/// A rule set that cannot be loaded; the message names the line (TOML) or
/// the rule, and what to change.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("policy rules: {0}")]
pub struct RulesError(pub String);

/// A checked, ordered set of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

fn check_rule(rule: &Rule) -> Result<(), String> {
    if rule.name.is_empty() {
        return Err("`name` must not be empty".into());
    }
    if scope_level(&rule.scope).is_none() {
        return Err(format!(
            "`scope` is `{}`; use `global`, `tenant:NAME`, `workspace:TENANT/NAME` or `agent:ID`",
            rule.scope
        ));
    }
    match rule.effect {
        Effect::Deny if rule.reason.as_deref().unwrap_or("").is_empty() => {
            return Err("a `deny` rule needs a `reason` the agent will read".into())
        }
        Effect::RequireApproval if rule.approvers.is_empty() => {
            return Err("a `require_approval` rule needs `approvers`".into())
        }
        _ => {}
    }
    for c in &rule.when {
        let tests = [c.equals.is_some(), c.matches.is_some(), c.greater_than.is_some(), c.less_than.is_some()]
            .iter()
            .filter(|t| **t)
            .count();
        if tests != 1 {
            return Err(format!(
                "the condition on `{}` must give exactly one of `equals`, `matches`, `greater_than`, `less_than`",
                c.field
            ));
        }
    }
    Ok(())
}

impl RuleSet {
    /// Parse and check rules written in TOML.
    pub fn from_toml(text: &str) -> Result<RuleSet, RulesError> {
        let parsed: TomlRules = toml::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        let mut rules = Vec::new();
        for spanned in parsed.rule {
            let line = line_of(text, spanned.span().start);
            let rule = spanned.into_inner();
            check_rule(&rule).map_err(|e| RulesError(format!("rule `{}` at line {line}: {e}", rule.name)))?;
            rules.push(rule);
        }
        RuleSet::new(rules)
    }

    /// Parse and check rules written in JSON, by name:
    /// `{"rules": {name: {effect, ...}}}` ([`by_name`]).
    pub fn from_json(text: &str) -> Result<RuleSet, RulesError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct JsonRules {
            #[serde(default, with = "by_name")]
            rules: Vec<Rule>,
        }
        let parsed: JsonRules = serde_json::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        RuleSet::new(parsed.rules)
    }

    /// A rule set from rules already in memory (checked).
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, RulesError> {
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            check_rule(r).map_err(|e| RulesError(format!("rule `{}`: {e}", r.name)))?;
            if !seen.insert(r.name.as_str()) {
                return Err(RulesError(format!("two rules are named `{}`; names must be unique", r.name)));
            }
        }
        let mut rules = rules;
        // Stable: on equal priority, the rule written first decides.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Ok(RuleSet { rules })
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule that decides `action`, if any matches (see the module
    /// docs for how levels combine).
    pub fn decide(&self, action: &Action) -> Option<(&Rule, Decision)> {
        // The deciding rule of each level, most general first.
        let per_level: Vec<&Rule> = (0..LEVELS.len())
            .filter_map(|level| self.rules.iter().find(|r| scope_level(&r.scope) == Some(level) && r.matches(action)))
            .collect();
        let rule = per_level
            .iter()
            .find(|r| r.effect == Effect::Deny)
            .or_else(|| per_level.iter().find(|r| r.effect == Effect::RequireApproval))
            .or_else(|| per_level.last())?;
        let decision = match rule.effect {
            Effect::Allow => Decision::Allow,
            Effect::Deny => Decision::Deny(rule.reason.clone().unwrap_or_default()),
            Effect::RequireApproval => Decision::RequireApproval(rule.approvers.clone()),
        };
        Some((rule, decision))
    }
}

impl Rule {
    /// Whether this rule applies to `action`.
    pub fn matches(&self, action: &Action) -> bool {
        self.in_scope(action)
            && glob(&self.action, &action.kind)
            && glob(&self.subject, &action.subject)
            && glob(&self.target, &action.target)
            && self.when.iter().all(|c| c.holds(action))
    }
}

impl Rule {
    fn in_scope(&self, action: &Action) -> bool {
        let Some((level, name)) = self.scope.split_once(':') else { return true };
        let workspace = action.attributes.iter().find(|a| a.key == "workspace").map(|a| a.value.as_str());
        match level {
            "tenant" => action.tenant.as_deref() == Some(name),
            "workspace" => {
                let (tenant, ws) = name.split_once('/').unwrap_or((name, ""));
                action.tenant.as_deref() == Some(tenant) && workspace == Some(ws)
            }
            "agent" => action.subject == name,
            _ => false,
        }
    }
}

impl Condition {
    fn value(&self, action: &Action) -> Option<String> {
        match self.field.as_str() {
            "price" => Some(action.price.to_string()),
            "kind" => Some(action.kind.clone()),
            "subject" => Some(action.subject.clone()),
            "target" => Some(action.target.clone()),
            "tenant" => action.tenant.clone(),
            key => action.attributes.iter().find(|a| a.key == key).map(|a| a.value.clone()),
        }
    }

    /// Whether the condition holds for `action` (a missing field never
    /// holds).
    pub fn holds(&self, action: &Action) -> bool {
        let Some(value) = self.value(action) else { return false };
        if let Some(e) = &self.equals {
            return &value == e;
        }
        if let Some(g) = &self.matches {
            return glob(g, &value);
        }
        let Ok(n) = value.parse::<u64>() else { return false };
        match (self.greater_than, self.less_than) {
            (Some(gt), _) => n > gt,
            (_, Some(lt)) => n < lt,
            _ => false,
        }
    }
}

/// `*` matches any run of characters, `?` exactly one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::{glob, RuleSet};

    /// JSON rules by name: the name is the key, order is by name, and
    /// written back they read the same.
    #[test]
    fn rules_by_name() {
        let set = RuleSet::from_json(
            r#"{"rules": {"b": {"effect": "allow"}, "a": {"effect": "deny", "reason": "no", "priority": 2}}}"#,
        )
        .unwrap();
        let names: Vec<_> = set.rules().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Rules {
            #[serde(with = "super::by_name")]
            rules: Vec<super::Rule>,
        }
        let text = serde_json::to_string(&Rules { rules: set.rules().to_vec() }).unwrap();
        assert_eq!(RuleSet::from_json(&text).unwrap(), set);
        for bad in [
            r#"{"rules": {"a": {"name": "a", "effect": "allow"}}}"#,
            r#"{"rules": {"a": 1}}"#,
            r#"{"rules": [{"name": "a", "effect": "allow"}]}"#,
            r#"{"rule": []}"#,
        ] {
            assert!(RuleSet::from_json(bad).is_err(), "{bad}");
        }
    }

    /// Globs: `*` spans anything, `?` one character, the rest is literal.
    #[test]
    fn globs() {
        for (p, t, m) in [
            ("*", "", true),
            ("*", "alice/echo@1", true),
            ("alice/*", "alice/echo@1", true),
            ("alice/*", "bob/echo@1", false),
            ("*/echo@*", "alice/echo@0.1.0", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("/data/**", "/data/x/y", true),
            ("invoke", "invokes", false),
            ("*.txt", "notes.txt.bak", false),
        ] {
            assert_eq!(glob(p, t), m, "{p} vs {t}");
        }
    }
}
