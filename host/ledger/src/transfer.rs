//! Transfers: why value moves ([`TransferKind`]), the system accounts it
//! moves between, a transfer ([`Transfer`]: as asked to be posted, made by
//! its kind's constructor and checked by its kind's rules, and as posted),
//! and where a call's two-phase transfer stands ([`TransferPhase`]).
//!
//! Like TigerBeetle's, a transfer is either posted at once or two-phase: a
//! hold is *pending* while its call runs (the debit account's `held` grows),
//! then *posted* (in full or in part) or *voided* when the call settles.

use serde::{Deserialize, Serialize};

use crate::{AgentId, Asset, LedgerError};

/// Why a transfer moved what it moved. Settlement decides by kind what a
/// hold posts (a call's price and a guest's transfers only on success, its
/// fuel as burned, ...), never by a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// New money or budget, from `@mint`.
    Mint,
    /// One agent paying another.
    Transfer,
    /// A call's price, caller to owner.
    Price,
    /// The fuel a call burned, payer to `@consumed`.
    Fuel,
    /// The disk a call grew, payer to `@consumed`.
    Disk,
    /// A transfer a running guest made as its principal.
    GuestTransfer,
    /// Scrip taken out of circulation, to `@burn`.
    Burn,
    /// Scrip put into the public-goods pool.
    PoolDeposit,
    /// A grant paid from the pool.
    PoolGrant,
    /// A share of a universal basic income distribution.
    Ubi,
    /// The language-model tokens a call used, payer to `@consumed`.
    Llm,
}

impl TransferKind {
    /// Every kind, in a fixed order.
    pub const ALL: [TransferKind; 11] = [
        TransferKind::Mint,
        TransferKind::Transfer,
        TransferKind::Price,
        TransferKind::Fuel,
        TransferKind::Disk,
        TransferKind::GuestTransfer,
        TransferKind::Burn,
        TransferKind::PoolDeposit,
        TransferKind::PoolGrant,
        TransferKind::Ubi,
        TransferKind::Llm,
    ];

    /// The stable snake_case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Mint => "mint",
            TransferKind::Transfer => "transfer",
            TransferKind::Price => "price",
            TransferKind::Fuel => "fuel",
            TransferKind::Disk => "disk",
            TransferKind::GuestTransfer => "guest_transfer",
            TransferKind::Burn => "burn",
            TransferKind::PoolDeposit => "pool_deposit",
            TransferKind::PoolGrant => "pool_grant",
            TransferKind::Ubi => "ubi",
            TransferKind::Llm => "llm",
        }
    }

    /// The kind named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<TransferKind> {
        TransferKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a hold of this kind posts when its call settles, of `held`:
    /// fuel as burned (`fuel_burned`, at most the hold); a price or a
    /// guest's transfer whole if the call succeeded; nothing otherwise.
    pub fn settled_amount(self, held: u64, success: bool, fuel_burned: u64) -> u64 {
        match self {
            TransferKind::Fuel => fuel_burned.min(held),
            TransferKind::Price | TransferKind::GuestTransfer if success => held,
            _ => 0,
        }
    }
}

impl std::fmt::Display for TransferKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The system account money is minted from; its balance is minus the total
/// minted.
pub const MINT_ACCOUNT: &str = "@mint";
/// The system account consumed resources are posted to.
pub const CONSUMED_ACCOUNT: &str = "@consumed";

/// How the ids of the summaries of archived charges begin (`archived:` then
/// the hour, the kind, the debit and the credit); no other transfer may
/// take such an id.
pub const ARCHIVED_PREFIX: &str = "archived:";
/// The system account burned scrip goes to (taken out of circulation).
pub const BURN_ACCOUNT: &str = "@burn";
/// The public-goods pool: funded by minting or by agents, paid out as
/// grants and UBI.
pub const POOL_ACCOUNT: &str = "@pool";

/// A posted, immutable movement of one asset between two accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Unique id: replaying a transfer with the same id returns this record.
    pub id: String,
    /// Account debited.
    pub from: String,
    /// Account credited.
    pub to: String,
    /// What moved.
    pub asset: Asset,
    /// How much, in the asset's smallest unit; never zero.
    pub amount: u64,
    /// Why it moved.
    pub kind: TransferKind,
    /// Free text from whoever made the transfer.
    pub memo: String,
}

/// A request to move scrip (or a resource budget) between two agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// Idempotency key: the same id is applied once; the same id with other
    /// parameters is rejected.
    pub id: String,
    /// Account debited.
    pub from: AgentId,
    /// Account credited.
    pub to: AgentId,
    /// What moves.
    pub asset: Asset,
    /// How much; must be above zero.
    pub amount: u64,
    /// Free text.
    pub memo: String,
}

/// Transfers to post are made by their kind's constructor
/// ([`Transfer::mint`], [`Transfer::requested`], ...), never by hand;
/// [`Transfer::problem`] says what breaks the kind's rules, and every
/// backend refuses such a transfer, so a rule is written once, here.
impl Transfer {
    fn new(id: &str, from: &str, to: &str, asset: Asset, amount: u64, kind: TransferKind) -> Transfer {
        Transfer {
            id: id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            asset,
            amount,
            kind,
            memo: String::new(),
        }
    }

    /// Create `amount` of `asset` for `to`, from `@mint`.
    pub fn mint(id: &str, to: &AgentId, asset: Asset, amount: u64) -> Transfer {
        Transfer::new(id, MINT_ACCOUNT, to.as_str(), asset, amount, TransferKind::Mint)
    }

    /// The transfer an agent asked for: one agent paying another.
    pub fn requested(req: &TransferRequest) -> Transfer {
        Transfer {
            memo: req.memo.clone(),
            ..Transfer::new(&req.id, req.from.as_str(), req.to.as_str(), req.asset, req.amount, TransferKind::Transfer)
        }
    }

    /// Take scrip out of circulation, to `@burn`.
    pub fn burn(id: &str, from: &AgentId, amount: u64) -> Transfer {
        Transfer::new(id, from.as_str(), BURN_ACCOUNT, Asset::Scrip, amount, TransferKind::Burn)
    }

    /// Scrip from an agent into the public-goods pool.
    pub fn pool_deposit(id: &str, from: &AgentId, amount: u64) -> Transfer {
        Transfer::new(id, from.as_str(), POOL_ACCOUNT, Asset::Scrip, amount, TransferKind::PoolDeposit)
    }

    /// New scrip straight into the pool.
    pub fn mint_to_pool(id: &str, amount: u64) -> Transfer {
        Transfer::new(id, MINT_ACCOUNT, POOL_ACCOUNT, Asset::Scrip, amount, TransferKind::Mint)
    }

    /// A grant paid from the pool; the pool pays only what it has.
    pub fn pool_grant(id: &str, to: &AgentId, amount: u64) -> Transfer {
        Transfer::new(id, POOL_ACCOUNT, to.as_str(), Asset::Scrip, amount, TransferKind::PoolGrant)
    }

    /// A share of a UBI distribution, from `source` (`@mint` or `@pool`).
    pub fn ubi_share(id: &str, source: &str, to: &str, amount: u64) -> Transfer {
        Transfer::new(id, source, to, Asset::Scrip, amount, TransferKind::Ubi)
    }

    /// What breaks its kind's rules, if anything: a zero amount, a
    /// transfer to itself, the wrong system account for the kind, or a
    /// kind only settlement posts (a call's price, fuel, disk, a guest's
    /// transfer).
    pub fn problem(&self) -> Option<String> {
        use TransferKind::*;
        if self.amount == 0 {
            return Some("amount must be above zero".into());
        }
        if self.from == self.to {
            return Some(format!("`{}` cannot transfer to itself", self.from));
        }
        let agent = |account: &str| !is_system_account(account);
        let scrip = self.asset == Asset::Scrip;
        let fits = match self.kind {
            Mint => self.from == MINT_ACCOUNT && (agent(&self.to) || (scrip && self.to == POOL_ACCOUNT)),
            Transfer => agent(&self.from) && agent(&self.to),
            Burn => scrip && agent(&self.from) && self.to == BURN_ACCOUNT,
            PoolDeposit => scrip && agent(&self.from) && self.to == POOL_ACCOUNT,
            PoolGrant => scrip && self.from == POOL_ACCOUNT && agent(&self.to),
            Ubi => scrip && (self.from == MINT_ACCOUNT || self.from == POOL_ACCOUNT) && agent(&self.to),
            Price | Fuel | Disk | GuestTransfer | Llm => {
                return Some(format!("a `{}` transfer is posted only by settling a call", self.kind))
            }
        };
        (!fits).then(|| format!("a `{}` of {} cannot go from `{}` to `{}`", self.kind, self.asset, self.from, self.to))
    }

    /// [`Transfer::problem`] as the ledger's error.
    pub fn check(&self) -> Result<(), LedgerError> {
        self.problem().map_or(Ok(()), |p| Err(LedgerError::Invalid(p)))
    }

    /// Whether `existing`, posted under this id, moved what this transfer
    /// moves (so posting it again is a replay, not a conflict).
    pub fn replays(&self, existing: &Transfer) -> bool {
        existing.from == self.from
            && existing.to == self.to
            && existing.asset == self.asset
            && existing.amount == self.amount
    }
}

/// Whether `account` is a system account (`@mint`, `@pool`, ...).
pub fn is_system_account(account: &str) -> bool {
    account.starts_with('@')
}

/// Whether `account` may be debited past zero: only `@mint`, whose
/// balance is minus everything ever minted. Every other account, the pool
/// included, pays only what it has.
pub fn may_overdraw(account: &str) -> bool {
    account == MINT_ACCOUNT
}

/// Where a two-phase transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferPhase {
    /// Held: the debit account's `held` counts it; nothing moved yet.
    Pending,
    /// Settled and posted (`posted_amount` of it, at most the hold).
    Posted,
    /// Settled with nothing posted: the hold was released.
    Voided,
}

impl TransferPhase {
    /// The stable snake_case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferPhase::Pending => "pending",
            TransferPhase::Posted => "posted",
            TransferPhase::Voided => "voided",
        }
    }

    /// The phase named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<TransferPhase> {
        [TransferPhase::Pending, TransferPhase::Posted, TransferPhase::Voided].into_iter().find(|p| p.as_str() == s)
    }

    /// The phase a hold ends in when settlement posts `posted_amount` of it.
    pub fn settled(posted_amount: u64) -> TransferPhase {
        if posted_amount > 0 {
            TransferPhase::Posted
        } else {
            TransferPhase::Voided
        }
    }
}

impl std::fmt::Display for TransferPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    #[test]
    fn every_constructor_makes_a_transfer_its_kind_allows() {
        let req = TransferRequest {
            id: "t".into(),
            from: agent("a"),
            to: agent("b"),
            asset: Asset::Fuel,
            amount: 3,
            memo: "m".into(),
        };
        for p in [
            Transfer::mint("m", &agent("a"), Asset::DiskBytes, 1),
            Transfer::requested(&req),
            Transfer::burn("b", &agent("a"), 1),
            Transfer::pool_deposit("d", &agent("a"), 1),
            Transfer::mint_to_pool("mp", 1),
            Transfer::pool_grant("g", &agent("a"), 1),
            Transfer::ubi_share("u/a", POOL_ACCOUNT, "a", 1),
        ] {
            assert_eq!(p.problem(), None, "{p:?}");
        }
    }

    #[test]
    fn a_transfer_against_its_kinds_rules_says_what_is_wrong() {
        let a = agent("a");
        let cases = [
            (Transfer { amount: 0, ..Transfer::burn("x", &a, 1) }, "above zero"),
            (Transfer { to: "a".into(), ..Transfer::pool_deposit("x", &a, 1) }, "to itself"),
            (Transfer { asset: Asset::Fuel, ..Transfer::burn("x", &a, 1) }, "a `burn` of fuel"),
            (Transfer { from: POOL_ACCOUNT.into(), ..Transfer::mint("x", &a, Asset::Scrip, 1) }, "`mint`"),
            (Transfer { to: CONSUMED_ACCOUNT.into(), ..Transfer::pool_grant("x", &a, 1) }, "`pool_grant`"),
            (Transfer { kind: TransferKind::Fuel, ..Transfer::burn("x", &a, 1) }, "settling a call"),
            (
                Transfer {
                    from: "@pool".into(),
                    ..Transfer::requested(&TransferRequest {
                        id: "x".into(),
                        from: a.clone(),
                        to: agent("b"),
                        asset: Asset::Scrip,
                        amount: 1,
                        memo: String::new(),
                    })
                },
                "`transfer`",
            ),
        ];
        for (p, says) in cases {
            let problem = p.problem().unwrap_or_else(|| panic!("{p:?} passed"));
            assert!(problem.contains(says), "{problem:?} does not say {says:?}");
            assert!(p.check().is_err());
        }
    }

    #[test]
    fn only_the_mint_overdraws() {
        assert!(may_overdraw(MINT_ACCOUNT));
        for account in [POOL_ACCOUNT, BURN_ACCOUNT, CONSUMED_ACCOUNT, "alice"] {
            assert!(!may_overdraw(account), "{account}");
        }
    }

    #[test]
    fn a_hold_settles_posted_or_voided() {
        assert_eq!(TransferPhase::settled(0), TransferPhase::Voided);
        assert_eq!(TransferPhase::settled(7), TransferPhase::Posted);
        for p in [TransferPhase::Pending, TransferPhase::Posted, TransferPhase::Voided] {
            assert_eq!(TransferPhase::parse(p.as_str()), Some(p));
        }
    }
}
