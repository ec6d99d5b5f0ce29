//! Language models, the host's metered `llm` capability, below the guest
//! import (`crate::capabilities`, which holds and charges the tokens and
//! asks the policy chain): the providers the operator configures
//! (`provider`), which of them takes a request and what their calls
//! measured (`router`), and the request itself in OpenAI's
//! chat-completions protocol (`client`); and a deterministic server of
//! that protocol on loopback (`loopback`), for machines that reach no
//! provider.

mod client;
pub mod loopback;
mod provider;
mod router;

pub(crate) use client::{send, ChatRequest, Failure};
pub use provider::LlmProvider;
pub(crate) use router::{ModelChoice, NoProvider, Providers};

/// Tokens a prompt of `messages` is taken to have before the provider
/// counts it: a token per four bytes of text, rounded up, and four per
/// message for its framing, and three for the answer's priming (what
/// OpenAI's own accounting adds). The hold is this plus `max-tokens`;
/// the charge is what the provider reports.
pub fn estimate_prompt_tokens<'a>(messages: impl IntoIterator<Item = &'a str>) -> u64 {
    3 + messages.into_iter().map(|m| 4 + (m.len() as u64).div_ceil(4)).sum::<u64>()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prompt_estimate_counts_text_and_framing() {
        assert_eq!(super::estimate_prompt_tokens([]), 3);
        assert_eq!(super::estimate_prompt_tokens(["abcd", "abcde"]), 3 + 5 + 6);
    }
}
