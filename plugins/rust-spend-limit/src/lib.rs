//! rust-spend-limit: a policy plugin that caps how much scrip one action may
//! move. Invocations priced above 100 scrip and transfers above 1,000 scrip
//! are denied with a reason naming the limit; everything else is allowed.

use fuelhost_guest::policy_types::{Action, Decision};
use fuelhost_guest::Policy;

/// Highest price, in scrip, of one invocation.
const MAX_INVOKE_PRICE: u64 = 100;
/// Highest amount, in scrip, of one transfer.
const MAX_TRANSFER: u64 = 1_000;

struct SpendLimit;

impl Policy for SpendLimit {
    fn check(action: Action) -> Decision {
        let limit = match action.kind.as_str() {
            "invoke" => MAX_INVOKE_PRICE,
            "transfer" => MAX_TRANSFER,
            _ => return Decision::Allow,
        };
        if action.price > limit {
            Decision::Deny(format!(
                "spend limit: {} of {} costs {} scrip, over the limit of {} per {}",
                action.kind, action.target, action.price, limit, action.kind
            ))
        } else {
            Decision::Allow
        }
    }
}

fuelhost_guest::export_policy!(SpendLimit);
