//! Typed exports: the functions a component exports (its own interfaces'
//! or top-level ones), their WIT types written as WIT and as JSON Schema,
//! and JSON arguments checked against those types and turned into
//! component values, with results turned back into JSON.
//!
//! **How values look in JSON.** `bool` a boolean; integers numbers (range
//! checked); `f32`/`f64` numbers; `char` a one-character string; `string`
//! a string; `list<T>` and `tuple<...>` arrays; a `record` an object of
//! its fields (an `option` field may be left out); an `enum` its case's
//! name; a `variant` `{"case": payload}`, or the case's name when it has
//! no payload; `option<T>` `null` or the value; `result<T, E>`
//! `{"ok": T}` or `{"err": E}`; `flags` an array of the names set.
//! Resources, futures and streams cannot be passed as JSON: a function
//! taking one is listed, and a call to it refused, saying so.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::{Component, Val};
use wasmtime::Engine;

/// One parameter of an exported function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedParam {
    /// Its name in the WIT.
    pub name: String,
    /// Its type, written as WIT (`u32`, `list<string>`, `record { ... }`).
    pub wit: String,
}

/// A function a component exports, as an invocation names and calls it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedFunction {
    /// What an invocation names: the function alone (`add`) when it is
    /// top-level or the only one of its name, else
    /// `<interface>#<function>` (`docs:adder/add@0.1.0#add`). Both forms
    /// are always accepted.
    pub name: String,
    /// The exported interface it belongs to, if any.
    pub interface: Option<String>,
    /// The function's own name.
    pub function: String,
    /// Its parameters, in order.
    pub params: Vec<TypedParam>,
    /// Its results' types, written as WIT (none, or one).
    pub results: Vec<String>,
    /// The JSON Schema of its arguments: an array, one item per parameter.
    pub args_schema: Json,
    /// The JSON Schema of its result (`null` when it returns nothing).
    pub result_schema: Json,
    /// Whether it is an `async func` (lifted async, component-model-async):
    /// called the same way, run concurrently.
    #[serde(rename = "async", default)]
    pub lifted_async: bool,
}

/// Every function `component` exports, top-level ones first, then each
/// exported interface's in the order it declares them.
pub fn exported_functions(engine: &Engine, component: &Component) -> Vec<ExportedFunction> {
    let mut found = Vec::new();
    let mut spent = 0;
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) if in_json(&f) => found.push(describe(None, name, &f, &mut spent)),
            // fuelhost's own interfaces (a policy plugin's `policy`) are
            // not an artifact's functions.
            ComponentItem::ComponentInstance(_) if name.starts_with("fuelhost:") => {}
            ComponentItem::ComponentInstance(instance) => {
                for (function, item) in instance.exports(engine) {
                    match item.ty {
                        ComponentItem::ComponentFunc(f) if in_json(&f) => {
                            found.push(describe(Some(name), function, &f, &mut spent))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // A function named alone when no other has its name.
    let counts = found.iter().fold(std::collections::HashMap::new(), |mut m, f| {
        *m.entry(f.function.clone()).or_insert(0) += 1;
        m
    });
    for f in &mut found {
        if f.interface.is_some() && counts[&f.function] > 1 {
            f.name = format!("{}#{}", f.interface.as_deref().unwrap_or_default(), f.function);
        }
    }
    found
}

/// Whether every parameter and result of `f` can be written as JSON (no
/// resource, future or stream anywhere in it): only such a function is
/// called by name (an `async func` too).
fn in_json(f: &ComponentFunc) -> bool {
    fn plain(ty: &Type) -> bool {
        match ty {
            Type::List(l) => plain(&l.ty()),
            Type::FixedLengthList(l) => plain(&l.ty()),
            Type::Map(m) => plain(&m.key()) && plain(&m.value()),
            Type::Record(r) => r.fields().all(|f| plain(&f.ty)),
            Type::Tuple(t) => t.types().all(|t| plain(&t)),
            Type::Variant(v) => v.cases().all(|c| c.ty.as_ref().is_none_or(plain)),
            Type::Option(o) => plain(&o.ty()),
            Type::Result(r) => r.ok().as_ref().is_none_or(plain) && r.err().as_ref().is_none_or(plain),
            Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => false,
            _ => true,
        }
    }
    f.params().all(|(_, t)| plain(&t)) && f.results().all(|t| plain(&t))
}

/// Bytes of types one component's functions are described in, all told:
/// past it, the rest of its functions' types are elided (`…`).
const DESCRIBED_MAX: usize = 1 << 20;

/// `f` as an invocation calls it, its types described while `spent` (the
/// component's bytes of description so far) is under [`DESCRIBED_MAX`].
fn describe(interface: Option<&str>, function: &str, f: &ComponentFunc, spent: &mut usize) -> ExportedFunction {
    let params: Vec<(String, Type)> = f.params().map(|(n, t)| (n.to_string(), t)).collect();
    let results: Vec<Type> = f.results().collect();
    let mut wit_of = |ty: &Type| -> String {
        if *spent > DESCRIBED_MAX {
            return "…".into();
        }
        let w = wit(ty);
        *spent += w.len();
        w
    };
    let typed_params = params.iter().map(|(name, ty)| TypedParam { name: name.clone(), wit: wit_of(ty) }).collect();
    let typed_results = results.iter().map(&mut wit_of).collect();
    let mut schema_of = |ty: &Type| -> Json {
        if *spent > DESCRIBED_MAX {
            return json!({"description": "(too large to show)"});
        }
        let s = schema(ty);
        *spent += s.to_string().len();
        s
    };
    let items: Vec<Json> = params
        .iter()
        .map(|(name, ty)| {
            let mut s = schema_of(ty);
            s["title"] = json!(name);
            s
        })
        .collect();
    let result_schema = results.first().map_or(Json::Null, &mut schema_of);
    ExportedFunction {
        name: function.to_string(),
        interface: interface.map(str::to_string),
        function: function.to_string(),
        params: typed_params,
        results: typed_results,
        args_schema: json!({"type": "array", "prefixItems": items, "minItems": params.len(), "maxItems": params.len()}),
        result_schema,
        lifted_async: f.async_(),
    }
}

impl ExportedFunction {
    /// Whether an invocation's `export` names this function: its `name`,
    /// its `<interface>#<function>`, or its bare function name.
    pub fn is_named(&self, asked: &str) -> bool {
        asked == self.name
            || asked == self.function && !self.name.contains('#')
            || self.interface.as_deref().is_some_and(|i| asked == format!("{i}#{}", self.function))
    }
}

/// The most bytes a type is written out in, as WIT or as JSON Schema; past
/// it the rest is elided (`…`). A component shares its types by reference,
/// so a small one can declare a type that, written out in full, would be
/// gigabytes.
const SHOWN_MAX: usize = 16 << 10;

/// `ty` written as WIT (elided past [`SHOWN_MAX`] bytes).
pub fn wit(ty: &Type) -> String {
    let mut out = String::new();
    write_wit(ty, &mut out);
    if out.len() > SHOWN_MAX {
        let mut cut = SHOWN_MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Append `ty` as WIT to `out`, stopping once `out` is past
/// [`SHOWN_MAX`].
fn write_wit(ty: &Type, out: &mut String) {
    if out.len() > SHOWN_MAX {
        return;
    }
    // Each part of a list of them (fields, cases, names, types), until
    // `out` is full.
    fn parts<I>(out: &mut String, items: I, mut each: impl FnMut(&mut String, I::Item))
    where
        I: Iterator,
    {
        for (i, item) in items.enumerate() {
            if out.len() > SHOWN_MAX {
                return;
            }
            if i > 0 {
                out.push_str(", ");
            }
            each(out, item);
        }
    }
    let name = |out: &mut String, n: &str| out.push_str(&n[..n.len().min(SHOWN_MAX)]);
    match ty {
        Type::Bool => out.push_str("bool"),
        Type::S8 => out.push_str("s8"),
        Type::U8 => out.push_str("u8"),
        Type::S16 => out.push_str("s16"),
        Type::U16 => out.push_str("u16"),
        Type::S32 => out.push_str("s32"),
        Type::U32 => out.push_str("u32"),
        Type::S64 => out.push_str("s64"),
        Type::U64 => out.push_str("u64"),
        Type::Float32 => out.push_str("f32"),
        Type::Float64 => out.push_str("f64"),
        Type::Char => out.push_str("char"),
        Type::String => out.push_str("string"),
        Type::List(l) => {
            out.push_str("list<");
            write_wit(&l.ty(), out);
            out.push('>');
        }
        Type::FixedLengthList(l) => {
            out.push_str("list<");
            write_wit(&l.ty(), out);
            out.push_str(&format!(", {}>", l.len()));
        }
        Type::Map(m) => {
            out.push_str("map<");
            write_wit(&m.key(), out);
            out.push_str(", ");
            write_wit(&m.value(), out);
            out.push('>');
        }
        Type::Record(r) => {
            out.push_str("record { ");
            parts(out, r.fields(), |out, f| {
                name(out, f.name);
                out.push_str(": ");
                write_wit(&f.ty, out);
            });
            out.push_str(" }");
        }
        Type::Tuple(t) => {
            out.push_str("tuple<");
            parts(out, t.types(), |out, t| write_wit(&t, out));
            out.push('>');
        }
        Type::Variant(v) => {
            out.push_str("variant { ");
            parts(out, v.cases(), |out, c| {
                name(out, c.name);
                if let Some(t) = &c.ty {
                    out.push('(');
                    write_wit(t, out);
                    out.push(')');
                }
            });
            out.push_str(" }");
        }
        Type::Enum(e) => {
            out.push_str("enum { ");
            parts(out, e.names(), name);
            out.push_str(" }");
        }
        Type::Option(o) => {
            out.push_str("option<");
            write_wit(&o.ty(), out);
            out.push('>');
        }
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => out.push_str("result"),
            (ok, err) => {
                out.push_str("result<");
                match &ok {
                    Some(ok) => write_wit(ok, out),
                    None => out.push('_'),
                }
                if let Some(err) = &err {
                    out.push_str(", ");
                    write_wit(err, out);
                }
                out.push('>');
            }
        },
        Type::Flags(f) => {
            out.push_str("flags { ");
            parts(out, f.names(), name);
            out.push_str(" }");
        }
        Type::Own(_) => out.push_str("own<resource>"),
        Type::Borrow(_) => out.push_str("borrow<resource>"),
        Type::Future(_) => out.push_str("future"),
        Type::Stream(_) => out.push_str("stream"),
        Type::ErrorContext => out.push_str("error-context"),
    }
}

/// The JSON Schema of a value of `ty` (see the module docs), elided past
/// about [`SHOWN_MAX`] bytes (a part left out accepts anything, saying so).
pub fn schema(ty: &Type) -> Json {
    let mut left = SHOWN_MAX;
    schema_within(ty, &mut left)
}

/// [`schema`], spending `left` bytes (roughly: names and one per node).
fn schema_within(ty: &Type, left: &mut usize) -> Json {
    if *left == 0 {
        return json!({"description": "(too large to show)"});
    }
    *left -= 1;
    // Names, as many as fit.
    let names = |all: &mut dyn Iterator<Item = &str>, left: &mut usize| -> Vec<String> {
        let mut kept = Vec::new();
        for n in all {
            if *left == 0 {
                break;
            }
            *left = left.saturating_sub(n.len());
            kept.push(n.to_string());
        }
        kept
    };
    let int = |min: i128, max: i128| json!({"type": "integer", "minimum": min, "maximum": max});
    match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::S8 => int(i8::MIN.into(), i8::MAX.into()),
        Type::U8 => int(0, u8::MAX.into()),
        Type::S16 => int(i16::MIN.into(), i16::MAX.into()),
        Type::U16 => int(0, u16::MAX.into()),
        Type::S32 => int(i32::MIN.into(), i32::MAX.into()),
        Type::U32 => int(0, u32::MAX.into()),
        Type::S64 => int(i64::MIN.into(), i64::MAX.into()),
        Type::U64 => int(0, u64::MAX.into()),
        Type::Float32 | Type::Float64 => json!({"type": "number"}),
        Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => json!({"type": "string"}),
        Type::List(l) => json!({"type": "array", "items": schema_within(&l.ty(), left)}),
        Type::FixedLengthList(l) => {
            json!({"type": "array", "items": schema_within(&l.ty(), left), "minItems": l.len(), "maxItems": l.len()})
        }
        Type::Map(m) => {
            let (k, v) = (schema_within(&m.key(), left), schema_within(&m.value(), left));
            json!({"type": "array", "items": {"type": "array", "prefixItems": [k, v], "minItems": 2, "maxItems": 2}})
        }
        Type::Record(r) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for f in r.fields() {
                if *left == 0 {
                    return json!({"type": "object", "description": "(too large to show)"});
                }
                *left = left.saturating_sub(f.name.len());
                properties.insert(f.name.to_string(), schema_within(&f.ty, left));
                if !matches!(f.ty, Type::Option(_)) {
                    required.push(json!(f.name));
                }
            }
            json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
        }
        Type::Tuple(t) => {
            let items: Vec<Json> = t.types().map(|t| schema_within(&t, left)).collect();
            json!({"type": "array", "prefixItems": items, "minItems": items.len(), "maxItems": items.len()})
        }
        Type::Variant(v) => {
            let mut cases = Vec::new();
            for c in v.cases() {
                if *left == 0 {
                    return json!({"description": "(too large to show)"});
                }
                *left = left.saturating_sub(c.name.len());
                cases.push(match &c.ty {
                    Some(t) => json!({"type": "object", "properties": {c.name: schema_within(t, left)},
                                      "required": [c.name], "additionalProperties": false}),
                    None => json!({"const": c.name}),
                });
            }
            json!({"oneOf": cases})
        }
        Type::Enum(e) => json!({"enum": names(&mut e.names(), left)}),
        Type::Option(o) => json!({"anyOf": [{"type": "null"}, schema_within(&o.ty(), left)]}),
        Type::Result(r) => {
            let mut side = |name: &str, t: Option<Type>| {
                let inner = match &t {
                    Some(t) => schema_within(t, left),
                    None => json!({"type": "null"}),
                };
                json!({"type": "object", "properties": {name: inner}, "required": [name], "additionalProperties": false})
            };
            json!({"oneOf": [side("ok", r.ok()), side("err", r.err())]})
        }
        Type::Flags(f) => {
            json!({"type": "array", "items": {"enum": names(&mut f.names(), left)}, "uniqueItems": true})
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            json!({"not": {}, "description": "cannot be passed as JSON"})
        }
    }
}

/// What was wrong with an argument, said as where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {path}: {problem}")]
pub struct ArgError {
    /// Which argument, and where inside it (`b`, `point.x`, `items[2]`).
    pub path: String,
    /// What was expected and what came.
    pub problem: String,
}

/// `args` (a JSON array of one value per parameter, or an object by
/// parameter name) as the values `params` take, each checked against its
/// type.
pub fn arguments(params: &[(String, Type)], args: &Json) -> Result<Vec<Val>, ArgError> {
    let budget = &Budget(std::cell::Cell::new(ARGUMENTS_MAX));
    let whole = |problem: String| ArgError { path: "list".into(), problem };
    match args {
        Json::Array(items) => {
            if items.len() != params.len() {
                return Err(whole(format!(
                    "expected {} argument{} ({}), got {}",
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    params.iter().map(|(n, t)| format!("{n}: {}", wit(t))).collect::<Vec<_>>().join(", "),
                    items.len()
                )));
            }
            params.iter().zip(items).map(|((name, ty), v)| value(ty, v, name, budget)).collect()
        }
        Json::Object(by_name) => {
            if let Some(extra) = by_name.keys().find(|k| !params.iter().any(|(n, _)| n == *k)) {
                return Err(ArgError { path: extra.clone(), problem: "no parameter has this name".into() });
            }
            params
                .iter()
                .map(|(name, ty)| match by_name.get(name) {
                    Some(v) => value(ty, v, name, budget),
                    None if matches!(ty, Type::Option(_)) => Ok(Val::Option(None)),
                    None => Err(ArgError { path: name.clone(), problem: format!("missing (a {})", wit(ty)) }),
                })
                .collect()
        }
        Json::Null if params.is_empty() => Ok(Vec::new()),
        other => Err(whole(format!("expected an array of arguments (or an object by name), got {}", shown(other)))),
    }
}

/// The most bytes of values one call's arguments may become: JSON as
/// short as `{}` can stand for a record of thousands of fields, each left
/// out and so filled in.
const ARGUMENTS_MAX: usize = 64 << 20;

/// What is left of [`ARGUMENTS_MAX`] for the arguments being made.
struct Budget(std::cell::Cell<usize>);

impl Budget {
    /// Take `bytes`, or refuse the arguments as too large.
    fn spend(&self, bytes: usize, path: &str) -> Result<(), ArgError> {
        match self.0.get().checked_sub(bytes) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(ArgError {
                path: path.to_string(),
                problem: format!("the arguments make more than {} MiB of values; send less", ARGUMENTS_MAX >> 20),
            }),
        }
    }
}

/// A JSON value as an error shows it: short.
fn shown(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// `v` as a value of `ty`, `path` saying where it is.
fn value(ty: &Type, v: &Json, path: &str, budget: &Budget) -> Result<Val, ArgError> {
    budget.spend(std::mem::size_of::<Val>(), path)?;
    let wrong = || ArgError { path: path.to_string(), problem: format!("expected {}, got {}", wit(ty), shown(v)) };
    let int = |min: i128, max: i128| -> Result<i128, ArgError> {
        // `3` or `3.0` (JSON Schema's integers), never `3.5`.
        let whole = || v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e19).map(|f| f as i128);
        let n = v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from)).or_else(whole).ok_or_else(wrong)?;
        if n < min || n > max {
            return Err(ArgError { path: path.to_string(), problem: format!("{n} is out of range for {}", wit(ty)) });
        }
        Ok(n)
    };
    Ok(match ty {
        Type::Bool => Val::Bool(v.as_bool().ok_or_else(wrong)?),
        Type::S8 => Val::S8(int(i8::MIN.into(), i8::MAX.into())? as i8),
        Type::U8 => Val::U8(int(0, u8::MAX.into())? as u8),
        Type::S16 => Val::S16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        Type::U16 => Val::U16(int(0, u16::MAX.into())? as u16),
        Type::S32 => Val::S32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        Type::U32 => Val::U32(int(0, u32::MAX.into())? as u32),
        Type::S64 => Val::S64(int(i64::MIN.into(), i64::MAX.into())? as i64),
        Type::U64 => Val::U64(int(0, u64::MAX.into())? as u64),
        Type::Float32 => {
            let x = v.as_f64().ok_or_else(wrong)?;
            if (x as f32).is_infinite() {
                return Err(ArgError { path: path.to_string(), problem: format!("{x} is out of range for f32") });
            }
            Val::Float32(x as f32)
        }
        Type::Float64 => Val::Float64(v.as_f64().ok_or_else(wrong)?),
        Type::Char => {
            let s = v.as_str().ok_or_else(wrong)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(wrong()),
            }
        }
        Type::String => {
            let text = v.as_str().ok_or_else(wrong)?;
            budget.spend(text.len(), path)?;
            Val::String(text.to_string())
        }
        Type::List(l) => Val::List(elements(&l.ty(), v.as_array().ok_or_else(wrong)?, path, budget)?),
        Type::FixedLengthList(l) => {
            let items = v.as_array().filter(|a| a.len() == l.len() as usize).ok_or_else(wrong)?;
            Val::FixedLengthList(elements(&l.ty(), items, path, budget)?)
        }
        Type::Map(m) => {
            let pairs = v.as_array().ok_or_else(wrong)?;
            let (k, val) = (m.key(), m.value());
            let mut out = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                let [key, item] = pair.as_array().map(Vec::as_slice).unwrap_or_default() else { return Err(wrong()) };
                out.push((
                    value(&k, key, &format!("{path}[{i}][0]"), budget)?,
                    value(&val, item, &format!("{path}[{i}][1]"), budget)?,
                ));
            }
            Val::Map(out)
        }
        Type::Record(r) => record(ty, r, v.as_object().ok_or_else(wrong)?, path, budget)?,
        Type::Tuple(t) => {
            let items = v.as_array().filter(|a| a.len() == t.types().len()).ok_or_else(wrong)?;
            Val::Tuple(
                t.types()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, x))| value(&t, x, &format!("{path}[{i}]"), budget))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Variant(variant) => {
            let (case, payload) = one_case(v).ok_or_else(wrong)?;
            let c = variant.cases().find(|c| c.name == case).ok_or_else(wrong)?;
            match (&c.ty, payload) {
                (None, None | Some(Json::Null)) => Val::Variant(case, None),
                (Some(t), Some(p)) => {
                    let at = format!("{path}.{case}");
                    Val::Variant(case, Some(Box::new(value(t, p, &at, budget)?)))
                }
                _ => return Err(wrong()),
            }
        }
        Type::Enum(e) => {
            let s = v.as_str().filter(|s| e.names().any(|n| n == *s)).ok_or_else(wrong)?;
            Val::Enum(s.to_string())
        }
        Type::Option(o) => match v {
            Json::Null => Val::Option(None),
            x => Val::Option(Some(Box::new(value(&o.ty(), x, path, budget)?))),
        },
        Type::Result(r) => {
            let (side, payload) = one_case(v).ok_or_else(wrong)?;
            result(r, &side, payload, path, budget)?.ok_or_else(wrong)?
        }
        Type::Flags(f) => flags(f, v.as_array().ok_or_else(wrong)?, path, budget).ok_or_else(wrong)??,
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(ArgError {
                path: path.to_string(),
                problem: format!(
                    "a {} cannot be passed as JSON: this function cannot be invoked with arguments",
                    wit(ty)
                ),
            })
        }
    })
}

/// `items` as elements of type `t` (a list's), each checked.
fn elements(t: &Type, items: &[Json], path: &str, budget: &Budget) -> Result<Vec<Val>, ArgError> {
    items.iter().enumerate().map(|(i, x)| value(t, x, &format!("{path}[{i}]"), budget)).collect()
}

/// `fields` as a value of record `r` (written `ty`): no field it lacks, each
/// of its fields given or, if optional, left out.
fn record(
    ty: &Type,
    r: &wasmtime::component::types::Record,
    fields: &Map<String, Json>,
    path: &str,
    budget: &Budget,
) -> Result<Val, ArgError> {
    let declared: std::collections::HashSet<&str> = r.fields().map(|f| f.name).collect();
    if let Some(extra) = fields.keys().find(|k| !declared.contains(k.as_str())) {
        return Err(ArgError { path: format!("{path}.{extra}"), problem: format!("{} has no such field", wit(ty)) });
    }
    let mut out = Vec::new();
    for f in r.fields() {
        let at = format!("{path}.{}", f.name);
        // Its name is copied, and a field left out still makes a value.
        budget.spend(f.name.len() + std::mem::size_of::<Val>(), &at)?;
        let given = match fields.get(f.name) {
            Some(x) => value(&f.ty, x, &at, budget)?,
            None if matches!(f.ty, Type::Option(_)) => Val::Option(None),
            None => return Err(ArgError { path: at, problem: format!("missing (a {})", wit(&f.ty)) }),
        };
        out.push((f.name.to_string(), given));
    }
    Ok(Val::Record(out))
}

/// Side `side` (`ok` or `err`) of result `r` with `payload`; `None` when
/// they do not fit it.
fn result(
    r: &wasmtime::component::types::ResultType,
    side: &str,
    payload: Option<&Json>,
    path: &str,
    budget: &Budget,
) -> Result<Option<Val>, ArgError> {
    let t = match side {
        "ok" => r.ok(),
        "err" => r.err(),
        _ => return Ok(None),
    };
    let inner = match (t, payload) {
        (None, None | Some(Json::Null)) => None,
        (Some(t), Some(p)) => Some(Box::new(value(&t, p, &format!("{path}.{side}"), budget)?)),
        _ => return Ok(None),
    };
    Ok(Some(Val::Result(if side == "ok" { Ok(inner) } else { Err(inner) })))
}

/// `names` as a value of flags `f`, each named once; `None` when one is not
/// a flag of it.
fn flags(
    f: &wasmtime::component::types::Flags,
    names: &[Json],
    path: &str,
    budget: &Budget,
) -> Option<Result<Val, ArgError>> {
    let declared: std::collections::HashSet<&str> = f.names().collect();
    let mut set: Vec<String> = Vec::new();
    for n in names {
        let s = n.as_str().filter(|s| declared.contains(s))?;
        if let Err(e) = budget.spend(s.len(), path) {
            return Some(Err(e));
        }
        if !set.iter().any(|x| x == s) {
            set.push(s.to_string());
        }
    }
    Some(Ok(Val::Flags(set)))
}

/// A variant's (or result's) case and payload: `"name"`, or an object of
/// one key.
fn one_case(v: &Json) -> Option<(String, Option<&Json>)> {
    match v {
        Json::String(s) => Some((s.clone(), None)),
        Json::Object(m) if m.len() == 1 => m.iter().next().map(|(k, p)| (k.clone(), Some(p))),
        _ => None,
    }
}

/// A function's results as JSON: `null` for none, the value for one.
pub fn results_json(vals: &[Val]) -> Json {
    match vals {
        [] => Json::Null,
        [one] => to_json(one),
        many => Json::Array(many.iter().map(to_json).collect()),
    }
}

/// A component value as JSON (see the module docs).
pub fn to_json(v: &Val) -> Json {
    match v {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        Val::Float32(x) => json!(x),
        Val::Float64(x) => json!(x),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Json::Array(items.iter().map(to_json).collect())
        }
        Val::Map(pairs) => Json::Array(pairs.iter().map(|(k, v)| json!([to_json(k), to_json(v)])).collect()),
        Val::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Val::Variant(case, None) | Val::Enum(case) => json!(case),
        Val::Variant(case, Some(p)) => json!({ case: to_json(p) }),
        Val::Option(None) => Json::Null,
        Val::Option(Some(x)) => to_json(x),
        Val::Result(Ok(x)) => json!({"ok": x.as_deref().map_or(Json::Null, to_json)}),
        Val::Result(Err(x)) => json!({"err": x.as_deref().map_or(Json::Null, to_json)}),
        Val::Flags(names) => json!(names),
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => json!(null),
    }
}

/// What an invocation of a typed export sends as its input: the function
/// and its arguments, as JSON (`{"export": "add", "args": [1, 2]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedInput {
    /// The function (see [`ExportedFunction::name`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub export: String,
    /// Its arguments: an array in parameter order, or an object by name.
    #[serde(default, skip_serializing_if = "Json::is_null")]
    pub args: Json,
    /// Instead of `export` and `args`: the whole call in WAVE, as
    /// `wasmtime run --invoke` takes it (`add(1, 2)`,
    /// `area(rect({x: 3, y: 4}), none)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

impl TypedInput {
    /// The input bytes that call `export` with `args`.
    pub fn encode(export: &str, args: Json) -> Vec<u8> {
        serde_json::to_vec(&TypedInput { export: export.to_string(), args, call: None }).unwrap_or_default()
    }

    /// The input bytes that make `call`, a function call in WAVE.
    pub fn encode_call(call: &str) -> Vec<u8> {
        serde_json::to_vec(&TypedInput { export: String::new(), args: Json::Null, call: Some(call.to_string()) })
            .unwrap_or_default()
    }
}

/// A call of one typed export, checked and ready: the function's place in
/// the component, its arguments as values, how many results it returns.
#[derive(Debug, Clone)]
pub(crate) struct TypedCall {
    /// The function's name (see [`ExportedFunction::name`]).
    pub name: String,
    /// Where the function is among the component's exports.
    pub index: wasmtime::component::ComponentExportIndex,
    /// Its arguments.
    pub params: Vec<Val>,
    /// How many values it returns.
    pub results: usize,
}

/// Check `input` (a [`TypedInput`]) against the exports `functions` of
/// `component` and make it a [`TypedCall`]; what is wrong, said as what
/// to send instead.
pub(crate) fn prepare(
    component: &Component,
    functions: &[ExportedFunction],
    input: &[u8],
) -> Result<TypedCall, String> {
    let names = || functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
    let asked: TypedInput = serde_json::from_slice(input).map_err(|e| {
        format!(
            "this artifact is called by function: send {{\"export\": NAME, \"args\": [...]}} (or {{\"call\": \
             \"NAME(ARGS IN WAVE)\"}}) as the input (its exports: {}); the input was not that: {e}",
            names()
        )
    })?;
    let wave = match (&asked.call, asked.export.is_empty(), asked.args.is_null()) {
        (Some(call), true, true) => {
            Some(UntypedFuncCall::parse(call).map_err(|e| format!("the call is not a function call in WAVE: {e}"))?)
        }
        (Some(_), _, _) => return Err("give `call` alone, or `export` with `args`, not both".into()),
        (None, true, _) => return Err(format!("name the function to call (its exports: {})", names())),
        (None, false, _) => None,
    };
    let name = wave.as_ref().map_or(asked.export.as_str(), |w| w.name());
    let f = functions
        .iter()
        .find(|f| f.is_named(name))
        .ok_or_else(|| format!("no export `{name}` (its exports: {})", names()))?;
    let gone = || format!("the export `{}` is not in the component", f.name);
    let (ty, index) = match &f.interface {
        None => component.get_export(None, f.function.as_str()).ok_or_else(gone)?,
        Some(interface) => {
            let (_, instance) = component.get_export(None, interface.as_str()).ok_or_else(gone)?;
            component.get_export(Some(&instance), f.function.as_str()).ok_or_else(gone)?
        }
    };
    let ComponentItem::ComponentFunc(func) = ty else {
        return Err(format!("the export `{}` is not a function", f.name));
    };
    let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_string(), t)).collect();
    let values = match &wave {
        Some(call) => {
            let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
            call.to_wasm_params::<Val>(types.iter()).map_err(|e| format!("{}: {e}", f.name))?
        }
        None => arguments(&params, &asked.args).map_err(|e| format!("{}: {e}", f.name))?,
    };
    let results = func.results().len();
    Ok(TypedCall { name: f.name.clone(), index, params: values, results })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component exporting `f: func(x: list<R>)`, `R` a record of `fields`
    /// optional fields, and `g: func(x: T)`, `T` nested records doubling
    /// `depth` times (written out in full, 2^depth fields; at least 5, so
    /// that `x` is passed by pointer).
    fn component(fields: usize, depth: usize) -> (Engine, Component) {
        // A record in an exported function's type is an exported type too.
        let record: String = (0..fields).map(|i| format!("(field \"f{i}\" (option u8))")).collect();
        let mut nested = String::from("(type $d0 (record (field \"leaf\" u32))) (export $t0 \"t0\" (type $d0))");
        for k in 1..=depth {
            nested.push_str(&format!(
                "(type $d{k} (record (field \"a\" $t{p}) (field \"b\" $t{p}))) (export $t{k} \"t{k}\" (type $d{k}))",
                p = k - 1
            ));
        }
        let wat = format!(
            r#"(component
                (core module $m
                    (memory (export "mem") 1)
                    (func (export "f") (param i32 i32))
                    (func (export "g") (param i32))
                    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (type $rd (record {record}))
                (export $r "r" (type $rd))
                (type $l (list $r))
                {nested}
                (func (export "f") (param "x" $l) (canon lift (core func $i "f") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
                (func (export "g") (param "x" $t{depth}) (canon lift (core func $i "g") (memory (core memory $i "mem")) (realloc (core func $i "realloc")))))"#
        );
        let engine = Engine::default();
        let component = Component::new(&engine, wat).expect("the test component compiles");
        (engine, component)
    }

    /// Arguments as short as `{}` stand for a record of thousands of values:
    /// what they make is held to a budget, refused past it, not allocated.
    #[test]
    fn arguments_that_would_make_too_much_are_refused() {
        let (engine, component) = component(2_000, 5);
        let functions = exported_functions(&engine, &component);
        let few = serde_json::to_vec(&json!({"export": "f", "args": [vec![json!({}); 3]]})).unwrap();
        let call = prepare(&component, &functions, &few).unwrap();
        assert_eq!(call.params.len(), 1);
        let many = serde_json::to_vec(&json!({"export": "f", "args": [vec![json!({}); 20_000]]})).unwrap();
        let refused = prepare(&component, &functions, &many).unwrap_err();
        assert!(refused.contains("the arguments make more than 64 MiB of values"), "{refused}");
    }

    /// A type written out in full could be far larger than its component:
    /// its WIT and JSON Schema are elided past a bound.
    #[test]
    fn a_type_larger_than_its_component_is_elided() {
        let (engine, component) = component(1, 14);
        let functions = exported_functions(&engine, &component);
        let g = functions.iter().find(|f| f.name == "g").unwrap();
        assert!(g.params[0].wit.len() <= SHOWN_MAX + 4 && g.params[0].wit.ends_with('…'), "{}", g.params[0].wit.len());
        assert!(g.args_schema.to_string().len() < 4 * SHOWN_MAX, "{}", g.args_schema.to_string().len());
        assert!(g.args_schema.to_string().contains("too large to show"));
    }
}
