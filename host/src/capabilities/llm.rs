//! The `llm` import (`fuelhost:host@0.2.0`): an artifact asks a language
//! model, and the call's payer pays the tokens.
//!
//! One request, in order:
//!
//! 1. **Checked**: at least one message, `max-tokens` at least 1, a
//!    temperature in 0..=2, a response schema that is JSON.
//! 2. **Planned**: the providers that can take it, best first
//!    (`crate::llm::Providers::plan`).
//! 3. For each provider in turn: **asked** of the policy chain as an
//!    `llm` action (provider, model, the tokens it may use) and as an
//!    `http-request` to the provider's host (so egress rules apply to
//!    providers too); a refusal skips the provider. Then the prompt's
//!    estimate plus `max-tokens` is **held** from the payer's `llm_tokens`
//!    (refused, saying how much is missing, when the balance or the
//!    payer's allocation's `llm_tokens` quota cannot cover it). Then
//!    **sent**.
//! 4. **Answered**: the tokens the provider reports are kept for the
//!    call's settlement (`CallScope::llm_tokens`), the rest of the hold
//!    released. **Failed**: the whole hold is released, nothing charged;
//!    a quota spent, a provider down or a timeout of its own moves on to
//!    the next provider; a request the provider refuses as malformed, or
//!    the call's own deadline, ends it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::bindings::v0_2::fuelhost::host0_2_0::llm;
use crate::llm::{ChatRequest, Failure, ModelChoice, NoProvider};
use crate::sandbox::Sandbox;
use crate::scheduler::RouteMode;
use fuelhost_ledger::{AgentId, LedgerError};
use fuelhost_runtime::hostcall::{per_byte, HOST_DECISION, PER_BYTE_MILLI};

impl llm::Host for Sandbox {
    fn complete(&mut self, request: llm::Request) -> wasmtime::Result<Result<llm::Completion, llm::LlmError>> {
        let bytes: usize = request.messages.iter().map(|m| m.content.len()).sum();
        self.guest.charge(HOST_DECISION + per_byte(bytes, PER_BYTE_MILLI));
        Ok(complete(self, request))
    }
}

/// The request as checked: what is sent, what is held, how it was asked.
struct Checked {
    chat: ChatRequest,
    choice: ModelChoice,
    route: &'static str,
    prompt_tokens: u64,
}

fn check(request: llm::Request) -> Result<Checked, llm::LlmError> {
    let invalid = |m: String| Err(llm::LlmError::Invalid(m));
    if request.messages.is_empty() {
        return invalid("a request needs at least one message".into());
    }
    if request.max_tokens == 0 {
        return invalid("max-tokens is 0: ask for at least 1 token of answer".into());
    }
    if let Some(t) = request.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return invalid(format!("temperature {t} is outside 0.0 to 2.0"));
    }
    let schema = match request.response_schema.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        None => None,
        Some(Ok(v)) if v.is_object() => Some(v),
        Some(Ok(_)) => return invalid("the response schema must be a JSON object (a JSON Schema)".into()),
        Some(Err(e)) => return invalid(format!("the response schema is not JSON: {e}")),
    };
    let (choice, route) = match request.model {
        llm::ModelChoice::Named(name) if name.trim().is_empty() => return invalid("the model named is empty".into()),
        llm::ModelChoice::Named(name) => (ModelChoice::Named(name), "named"),
        llm::ModelChoice::Routed(mode) => {
            let mode = match mode {
                llm::Route::Standard => RouteMode::Standard,
                llm::Route::CostOptimized => RouteMode::CostOptimized,
                llm::Route::LatencyOptimized => RouteMode::LatencyOptimized,
                llm::Route::QualityOptimized => RouteMode::QualityOptimized,
            };
            (ModelChoice::Routed(mode), mode.as_str())
        }
    };
    let prompt_tokens = crate::llm::estimate_prompt_tokens(request.messages.iter().map(|m| m.content.as_str()));
    let messages = request
        .messages
        .into_iter()
        .map(|m| {
            let role = match m.role {
                llm::Role::System => "system",
                llm::Role::User => "user",
                llm::Role::Assistant => "assistant",
            };
            (role, m.content)
        })
        .collect();
    let chat = ChatRequest {
        model: String::new(),
        messages,
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        schema,
    };
    Ok(Checked { chat, choice, route, prompt_tokens })
}

/// What became of one provider tried.
enum Tried {
    Refused(String),
    Failed(String),
    Quota(String),
}

fn complete(sandbox: &mut Sandbox, request: llm::Request) -> Result<llm::Completion, llm::LlmError> {
    let mut checked = check(request)?;
    let hold = checked.prompt_tokens + u64::from(checked.chat.max_tokens);
    let deadline = sandbox.guest.wait_limit.as_ref().map(|w| w.deadline);
    let providers = sandbox.call.llm.clone();
    let plan = providers.plan(&checked.choice, hold, Instant::now()).map_err(|e| match e {
        NoProvider::Unknown(m) | NoProvider::Open(m) => llm::LlmError::Unavailable(m),
        NoProvider::TooLarge(m) => llm::LlmError::Invalid(m),
    })?;
    let payer = AgentId::trusted(sandbox.call.context.payer.clone());
    let invocation = sandbox.call.context.invocation_id.clone();
    let mut tried: Vec<(String, Tried)> = Vec::new();
    for target in plan {
        let provider = providers.provider(target.index);
        let name = format!("{}/{}", provider.name, target.model);
        if let Some(refusal) = asked(sandbox, provider, &target.model, checked.route, hold) {
            tried.push((name, Tried::Refused(refusal)));
            continue;
        }
        let call = &sandbox.call;
        if let Some((allocation, left)) = quota_left(call, &payer).filter(|(_, left)| *left < hold) {
            return Err(llm::LlmError::InsufficientBudget(format!(
                "`{payer}`'s allocation `{allocation}` has {left} llm_tokens left this period and the request needs \
                 {hold} held: the prompt's estimate ({}) plus max-tokens ({}); ask for fewer max-tokens, or wait for \
                 the next period",
                checked.prompt_tokens, checked.chat.max_tokens
            )));
        }
        match call.ledger.hold_llm_tokens(&invocation, &payer, hold) {
            Ok(()) => {}
            Err(LedgerError::Insufficient { available, .. }) => {
                return Err(llm::LlmError::InsufficientBudget(format!(
                    "`{payer}` has {available} llm_tokens available and the request needs {hold} held: the \
                     prompt's estimate ({}) plus max-tokens ({}); mint or transfer llm_tokens to it, or ask for \
                     fewer max-tokens",
                    checked.prompt_tokens, checked.chat.max_tokens
                )))
            }
            Err(e) => return Err(llm::LlmError::Unavailable(format!("the ledger could not hold the tokens: {e}"))),
        }
        let now = Instant::now();
        let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
        if left.is_zero() {
            release(sandbox, &invocation, hold);
            return Err(llm::LlmError::Timeout("the call's deadline passed before the request was sent".into()));
        }
        let timeout = Duration::from_millis(provider.timeout_ms).min(left);
        checked.chat.model = target.model.clone();
        let sent = crate::llm::send(provider, providers.key(target.index), &checked.chat, timeout);
        let took = now.elapsed();
        match sent {
            Ok(answer) => {
                providers.record(target.index, true, took, Instant::now());
                let input = answer.input_tokens.unwrap_or(checked.prompt_tokens);
                let output = answer.output_tokens.unwrap_or_else(|| (answer.text.len() as u64).div_ceil(4));
                let used = input + output;
                if used < hold {
                    release(sandbox, &invocation, hold - used);
                } else if used > hold {
                    // The provider counted past the estimate: hold the rest
                    // too, if the payer has it (the charge is what it has).
                    let _ = sandbox.call.ledger.hold_llm_tokens(&invocation, &payer, used - hold);
                }
                sandbox.call.llm_tokens.fetch_add(used, Ordering::SeqCst);
                tracing::info!(invocation = %invocation, provider = %provider.name, model = %target.model,
                    input, output, ms = took.as_millis() as u64, "a language model answered");
                return Ok(llm::Completion {
                    text: answer.text,
                    provider: provider.name.clone(),
                    model: if answer.model.is_empty() { target.model } else { answer.model },
                    input_tokens: input,
                    output_tokens: output,
                    finish_reason: answer.finish_reason,
                });
            }
            Err(failure) => {
                release(sandbox, &invocation, hold);
                let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
                match failure {
                    Failure::Request(m) => {
                        return Err(llm::LlmError::Provider(format!("{name} refused the request: {m}")))
                    }
                    Failure::Timeout if past_deadline => {
                        providers.record(target.index, false, took, Instant::now());
                        return Err(llm::LlmError::Timeout(format!(
                            "{name} did not answer before the call's deadline; nothing was charged"
                        )));
                    }
                    Failure::Timeout => {
                        providers.record(target.index, false, took, Instant::now());
                        tried.push((name, Tried::Failed(format!("no answer in {} ms", timeout.as_millis()))));
                    }
                    Failure::Quota(m) => {
                        providers.record(target.index, false, took, Instant::now());
                        tried.push((name, Tried::Quota(m)));
                    }
                    Failure::Provider(m) => {
                        providers.record(target.index, false, took, Instant::now());
                        tried.push((name, Tried::Failed(m)));
                    }
                }
            }
        }
    }
    Err(given_up(tried))
}

/// The error for a request every planned provider refused or failed.
fn given_up(tried: Vec<(String, Tried)>) -> llm::LlmError {
    let list = |keep: fn(&Tried) -> Option<&str>| {
        tried.iter().filter_map(|(n, t)| keep(t).map(|m| format!("{n}: {m}"))).collect::<Vec<_>>().join("; ")
    };
    let refused = list(|t| match t {
        Tried::Refused(m) => Some(m),
        _ => None,
    });
    let failed = list(|t| match t {
        Tried::Failed(m) => Some(m),
        _ => None,
    });
    let quota = list(|t| match t {
        Tried::Quota(m) => Some(m),
        _ => None,
    });
    if failed.is_empty() && quota.is_empty() {
        return llm::LlmError::Denied(format!("the policy chain refused every provider: {refused}"));
    }
    let mut message = String::from("no provider answered; nothing was charged");
    for (what, list) in [("failed", failed.clone()), ("out of quota", quota), ("refused by policy", refused)] {
        if !list.is_empty() {
            message.push_str(&format!(". {what}: {list}"));
        }
    }
    if failed.is_empty() {
        llm::LlmError::Unavailable(message)
    } else {
        llm::LlmError::Provider(message)
    }
}

/// What `payer`'s active allocation has left of its `llm_tokens` quota
/// this period (its id, and the tokens), if it has one: a request is held
/// within it as a call's fuel is held within a fuel quota.
fn quota_left(call: &crate::sandbox::CallScope, payer: &AgentId) -> Option<(String, u64)> {
    let allocations = call.ledger.allocations_of(payer).ok()?;
    allocations.into_iter().filter(|a| a.status == fuelhost_ledger::AllocationStatus::Active).find_map(|a| {
        let q = a.quota(fuelhost_ledger::Resource::LlmTokens)?;
        Some((a.id.clone(), q.limit().saturating_sub(q.used.saturating_add(q.held))))
    })
}

/// Release `tokens` of the call's hold.
fn release(sandbox: &Sandbox, invocation: &str, tokens: u64) {
    if let Err(e) = sandbox.call.ledger.release_llm_tokens(invocation, tokens) {
        tracing::error!(invocation, error = %e, "releasing llm tokens failed; the call's settlement releases them");
    }
}

/// Put the request for `provider`'s `model` to the policy chain: as an
/// `llm` action, then as an `http-request` to its host. Why not, if
/// either is refused. The plugins' fuel is the guest's.
fn asked(
    sandbox: &mut Sandbox,
    provider: &crate::llm::LlmProvider,
    model: &str,
    route: &str,
    hold: u64,
) -> Option<String> {
    let call = &sandbox.call;
    let uri: http::Uri = provider.base_url.parse().ok()?;
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let host = format!("{}:{port}", uri.host().unwrap_or_default());
    let estimated = crate::bindings::Usage { llm_tokens: hold, ..crate::bindings::NO_USAGE };
    let mut action = crate::actions::LLM.action(
        call.principal.to_string(),
        format!("{}/{model}", provider.name),
        vec![
            ("provider", provider.name.clone()),
            ("model", model.to_string()),
            ("provider-host", host.clone()),
            ("route", route.to_string()),
            ("estimated-tokens", hold.to_string()),
            ("payer", call.context.payer.clone()),
            ("via-artifact", call.context.artifact.clone()),
        ],
        0,
        estimated,
    );
    let verdict = call.judge.judge(Some(&call.context.invocation_id), &mut action);
    let mut fuel = verdict.fuel;
    let mut refusal = verdict.refusal();
    if refusal.is_none() {
        let url = crate::egress::redacted_url(
            &format!("{}/chat/completions", provider.base_url.trim_end_matches('/')).parse().ok()?,
        );
        let mut request = crate::actions::HTTP_REQUEST.action(
            call.principal.to_string(),
            host,
            vec![("method", "POST".into()), ("url", url), ("via-artifact", call.context.artifact.clone())],
            0,
            crate::bindings::NO_USAGE,
        );
        let verdict = call.judge.judge(Some(&call.context.invocation_id), &mut request);
        fuel += verdict.fuel;
        refusal = verdict.refusal().map(|r| format!("its host: {r}"));
    }
    sandbox.guest.charge(fuel);
    refusal
}
