//! Balance rows as the `balances` table stores them, kept in memory so that
//! a fast reservation can check a payer's budget without the database
//! connection (see `hot`).
//!
//! A kept row is exactly what the table holds for that account and asset,
//! and stays so:
//!
//! - a row is kept only when read from the table for an account nobody
//!   *claimed*;
//! - whatever may write an account's rows claims the account first (under
//!   the connection lock, before it reads the balance it will write): its
//!   kept rows are dropped, and none is kept or served again until the
//!   transaction that wrote them has ended ([`StoredRows::transaction_ended`],
//!   called under the connection lock right after a commit or a rollback);
//! - the projection of the settlement journal adds what it moves into the
//!   tables to the kept rows as it takes the charges out of memory (and
//!   takes it back out if its transaction does not commit), so a balance
//!   read (kept row + journaled charges + holds) never changes on the way.
//!
//! A claimed account is served through the connection, as before there was
//! anything kept: the check and the write that follows it see the same
//! balance, and no reservation slips in between.

use std::collections::{HashMap, HashSet};

use fuelhost_ledger::Asset;

/// A stored row: `(posted, held)`.
pub(super) type Row = (i64, i64);

/// See the module docs.
#[derive(Default)]
pub(super) struct StoredRows {
    /// Kept rows, per account, by asset (`Asset as usize`).
    rows: HashMap<String, [Option<Row>; Asset::ALL.len()]>,
    /// Accounts a transaction not yet ended may have written.
    claimed: HashSet<String>,
}

impl StoredRows {
    /// The kept row of `account`'s `asset`, if it is kept.
    pub fn get(&self, account: &str, asset: Asset) -> Option<Row> {
        self.rows.get(account).and_then(|r| r[asset as usize])
    }

    /// Keep `row`, just read from the table, unless `account` is claimed.
    pub fn keep(&mut self, account: &str, asset: Asset, row: Row) {
        if self.claimed.contains(account) {
            return;
        }
        match self.rows.get_mut(account) {
            Some(kept) => kept[asset as usize] = Some(row),
            None => {
                let mut kept = [None; Asset::ALL.len()];
                kept[asset as usize] = Some(row);
                self.rows.insert(account.to_string(), kept);
            }
        }
    }

    /// `account`'s rows may be written by the open transaction: drop them
    /// and keep none until it ends.
    pub fn claim(&mut self, account: &str) {
        self.rows.remove(account);
        if !self.claimed.contains(account) {
            self.claimed.insert(account.to_string());
        }
    }

    /// Whether `account` is claimed.
    pub fn is_claimed(&self, account: &str) -> bool {
        self.claimed.contains(account)
    }

    /// The transaction open on the connection committed or rolled back:
    /// what the table holds now is what a read returns, so claimed
    /// accounts may be kept again.
    pub fn transaction_ended(&mut self) {
        self.claimed.clear();
    }

    /// The projection moved `posted` (per account, by asset) into the
    /// table (`sign` 1), or its transaction did not commit (`sign` -1):
    /// follow it in the kept rows.
    pub fn shift(&mut self, posted: &HashMap<String, [i64; fuelhost_ledger::Asset::ALL.len()]>, sign: i64) {
        for (account, moved) in posted {
            let Some(kept) = self.rows.get_mut(account) else { continue };
            for (row, delta) in kept.iter_mut().zip(moved) {
                if let Some((p, _)) = row {
                    *p += delta * sign;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_account_is_neither_served_nor_kept_until_its_transaction_ends() {
        let mut rows = StoredRows::default();
        rows.keep("bob", Asset::Fuel, (100, 0));
        assert_eq!(rows.get("bob", Asset::Fuel), Some((100, 0)));
        rows.claim("bob");
        assert_eq!(rows.get("bob", Asset::Fuel), None);
        // A read inside the transaction may see its uncommitted write.
        rows.keep("bob", Asset::Fuel, (40, 0));
        assert_eq!(rows.get("bob", Asset::Fuel), None);
        assert!(rows.is_claimed("bob"));
        rows.transaction_ended();
        assert!(!rows.is_claimed("bob"));
        rows.keep("bob", Asset::Fuel, (40, 0));
        assert_eq!(rows.get("bob", Asset::Fuel), Some((40, 0)));
    }

    #[test]
    fn a_projection_moves_into_kept_rows_and_back() {
        let mut rows = StoredRows::default();
        rows.keep("bob", Asset::Scrip, (10, 2));
        rows.keep("bob", Asset::Fuel, (500, 0));
        let posted = HashMap::from([("bob".to_string(), [-3, -40, 0, 0]), ("alice".to_string(), [3, 0, 0, 0])]);
        rows.shift(&posted, 1);
        assert_eq!(rows.get("bob", Asset::Scrip), Some((7, 2)));
        assert_eq!(rows.get("bob", Asset::Fuel), Some((460, 0)));
        assert_eq!(rows.get("bob", Asset::DiskBytes), None);
        assert_eq!(rows.get("alice", Asset::Scrip), None, "a row never read is not made up");
        rows.shift(&posted, -1);
        assert_eq!(rows.get("bob", Asset::Fuel), Some((500, 0)));
    }
}
