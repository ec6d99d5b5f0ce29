//! A language-model provider as the operator configures it (in
//! `serve.toml`'s `[[llm.providers]]`, or [`crate::HostBuilder::llm_provider`]),
//! checked once when the host is built, its key read from the environment
//! then and never shown again.

use serde::Deserialize;

/// One OpenAI-compatible chat-completions endpoint and what the router
/// needs to know of it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmProvider {
    /// Its name, as artifacts' requests (`provider/model`), policies and
    /// reports name it: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
    pub name: String,
    /// The API's base URL, up to the version (`https://api.openai.com/v1`):
    /// requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The environment variable holding its API key, sent as a bearer
    /// token; none for a server that needs no key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The model ids it serves (at least one).
    pub models: Vec<String>,
    /// Its price per 1,000 prompt tokens, in scrip: what cost routing
    /// weighs.
    #[serde(default)]
    pub input_price_per_1k: u64,
    /// Its price per 1,000 answer tokens, in scrip.
    #[serde(default)]
    pub output_price_per_1k: u64,
    /// Its models' context window, tokens: a request whose prompt estimate
    /// plus `max-tokens` is larger goes to another provider, or is refused.
    #[serde(default = "default_context")]
    pub context_tokens: u64,
    /// What its latency is taken to be until calls measure it, ms.
    #[serde(default = "default_latency")]
    pub latency_hint_ms: u64,
    /// Its quality, 0 to 100, as quality routing weighs it.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// The longest one request may take, ms (the call's own deadline
    /// may cut it shorter).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_context() -> u64 {
    8_192
}

fn default_latency() -> u64 {
    1_000
}

fn default_quality() -> u8 {
    50
}

fn default_timeout() -> u64 {
    60_000
}

impl std::fmt::Debug for LlmProvider {
    /// Every field: the key is not among them (only the variable's name).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("models", &self.models)
            .field("input_price_per_1k", &self.input_price_per_1k)
            .field("output_price_per_1k", &self.output_price_per_1k)
            .field("context_tokens", &self.context_tokens)
            .field("latency_hint_ms", &self.latency_hint_ms)
            .field("quality", &self.quality)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl LlmProvider {
    /// A provider at `base_url` serving `models`, with the defaults: no
    /// key, free, an 8,192-token context, 1 s latency until measured,
    /// quality 50, requests of at most a minute.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>, models: &[&str]) -> LlmProvider {
        LlmProvider {
            name: name.into(),
            base_url: base_url.into(),
            api_key_env: None,
            models: models.iter().map(|m| m.to_string()).collect(),
            input_price_per_1k: 0,
            output_price_per_1k: 0,
            context_tokens: default_context(),
            latency_hint_ms: default_latency(),
            quality: default_quality(),
            timeout_ms: default_timeout(),
        }
    }

    /// What is wrong with it, saying how to fix it; `None` if nothing.
    pub fn problem(&self) -> Option<String> {
        let name = &self.name;
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
        };
        if !valid_name(name) {
            return Some(format!("LLM provider name `{name}`: use 1 to 64 of a-z, 0-9, `-`, `_`"));
        }
        match self.base_url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => {
                return Some(format!(
                    "LLM provider `{name}`: base_url `{}` is not an http(s) URL; give one like \
                     `https://api.openai.com/v1`",
                    self.base_url
                ))
            }
        }
        if self.models.is_empty() {
            return Some(format!("LLM provider `{name}` serves no model: list its model ids in `models`"));
        }
        if let Some(m) = self.models.iter().find(|m| m.is_empty() || m.contains(char::is_whitespace)) {
            return Some(format!("LLM provider `{name}`: model id `{m}` is empty or has spaces"));
        }
        if self.quality > 100 {
            return Some(format!("LLM provider `{name}`: quality is {}, past 100", self.quality));
        }
        if self.context_tokens == 0 || self.timeout_ms == 0 {
            return Some(format!("LLM provider `{name}`: context_tokens and timeout_ms must be above 0"));
        }
        None
    }

    /// Its key, read from its environment variable: `Ok(None)` when it
    /// names none, an error naming the variable when it is not set.
    pub(crate) fn key(&self) -> Result<Option<String>, String> {
        let Some(var) = &self.api_key_env else { return Ok(None) };
        match std::env::var(var) {
            Ok(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(format!(
                "LLM provider `{}`: the environment variable `{var}` (its `api_key_env`) is not set; set it to the \
                 provider's API key, or remove `api_key_env` for a server that needs none",
                self.name
            )),
        }
    }

    /// Its price per 1,000 tokens, prompt and answer together: what cost
    /// routing compares.
    pub(crate) fn price_per_1k(&self) -> u64 {
        self.input_price_per_1k.saturating_add(self.output_price_per_1k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_is_checked_and_its_key_never_shown() {
        let mut p = LlmProvider::new("local", "http://127.0.0.1:9/v1", &["small"]);
        assert_eq!(p.problem(), None);
        p.api_key_env = Some("FUELHOST_TEST_KEY_THAT_IS_NOT_SET".into());
        let err = p.key().unwrap_err();
        assert!(err.contains("FUELHOST_TEST_KEY_THAT_IS_NOT_SET"), "{err}");
        let debug = format!("{p:?}");
        assert!(debug.contains("api_key_env"), "{debug}");
        p.base_url = "ftp://x".into();
        assert!(p.problem().unwrap().contains("not an http(s) URL"));
        p.base_url = "http://x/v1".into();
        p.models.clear();
        assert!(p.problem().unwrap().contains("serves no model"));
        p.models = vec!["a".into()];
        p.name = "Big Provider".into();
        assert!(p.problem().unwrap().contains("a-z"));
    }
}
