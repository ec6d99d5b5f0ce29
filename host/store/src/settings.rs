//! The host's settings (the cost model, the policy rules, ...): one text
//! value per key, in the `settings` table of either database.

use crate::{params, read, write, Commit, Sql, StoreError};

/// The topic of changes to settings (see [`crate::Tx::notify`]): the key
/// is the setting's.
pub const TOPIC: &str = "settings";

/// The setting `key`, if it was set.
pub fn get(db: &dyn Sql, key: &str) -> Result<Option<String>, StoreError> {
    read(db, |tx| {
        tx.query_opt("SELECT value FROM settings WHERE key = ?1", params![key])?.map(|r| r.get(0)).transpose()
    })
}

/// Set `key` to `value`, durably, and tell the other hosts.
pub fn set(db: &dyn Sql, key: &str, value: &str) -> Result<(), StoreError> {
    write(db, Commit::Durable, |tx| {
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        tx.notify(TOPIC, key)
    })
}
