//! Reserving a call on the persisted path (a payer an allocation or a
//! sponsor grant governs): the reservation row, the price held from the
//! caller, the fuel held from the payer within what its allocation and its
//! sponsor's grant allow, in one transaction. The fast path (no allocation,
//! no grant) keeps its holds in memory instead (`hot`).

use rusqlite::{params, Connection};

use crate::allocation::{self as alloc, CallCaps, Governing};
use crate::database::{exec, now_ms, one};
use crate::hot::Hot;
use crate::rows::{available, balance_row, place_hold, read_grant, require_account};
use crate::storage;
use crate::usage::usage_exists;
use fuelhost_ledger::{Asset, LedgerError, Reservation, Reserved, TransferKind, CONSUMED_ACCOUNT};

/// What the payer's allocation allowed this call, when one governs it.
struct Governed {
    id: String,
    caps: CallCaps,
}

/// Reserve `r` inside `tx`. The outer error rolls the transaction back;
/// the inner one is a refusal by the payer's allocations, returned from a
/// committed transaction so that what the refusal found (an expiry, a new
/// period, their alerts) persists.
pub(crate) fn reserve_in(
    tx: &Connection,
    hot: &Hot,
    r: &Reservation,
    now: i64,
) -> Result<Result<Reserved, LedgerError>, LedgerError> {
    parties_exist(tx, r)?;
    if usage_exists(tx, &r.invocation_id)? || hot.has(&r.invocation_id) {
        return Err(LedgerError::DuplicateInvocation(r.invocation_id.clone()));
    }
    let governed = match governing(tx, r, now)? {
        Ok(governed) => governed,
        Err(refusal) => return Ok(Err(refusal)),
    };
    record(tx, r, governed.as_ref().map(|g| g.id.as_str()))?;
    if r.price > 0 && r.caller != r.owner {
        let id = format!("{}/price", r.invocation_id);
        place_hold(
            tx,
            hot,
            &id,
            &r.invocation_id,
            r.caller.as_str(),
            r.owner.as_str(),
            Asset::Scrip,
            r.price,
            TransferKind::Price,
            "",
        )?;
    }
    let (p, h) = balance_row(tx, hot, r.payer.as_str(), Asset::Fuel)?;
    let mut fuel = r.fuel_limit.min(available(p, h));
    if let Some(g) = &governed {
        fuel = fuel.min(g.caps.fuel);
    }
    let mut disk_cap = u64::MAX;
    if let Some(grant_id) = &r.sponsor_grant {
        (fuel, disk_cap) = hold_from_grant(tx, r, grant_id, fuel, now)?;
    }
    if fuel == 0 {
        return Err(no_fuel(r));
    }
    let id = format!("{}/fuel", r.invocation_id);
    place_hold(
        tx,
        hot,
        &id,
        &r.invocation_id,
        r.payer.as_str(),
        CONSUMED_ACCOUNT,
        Asset::Fuel,
        fuel,
        TransferKind::Fuel,
        "",
    )?;
    if let Some(g) = &governed {
        release_unheld_fuel(tx, g, fuel)?;
    }
    let (dp, dh) = balance_row(tx, hot, r.payer.as_str(), Asset::DiskBytes)?;
    let allocation_disk = governed.as_ref().and_then(|g| g.caps.disk_bytes).unwrap_or(u64::MAX);
    Ok(Ok(Reserved {
        fuel,
        disk_bytes: available(dp, dh).min(disk_cap).min(allocation_disk),
        memory_bytes: governed.as_ref().and_then(|g| g.caps.memory_bytes),
        allocation: governed.map(|g| g.id),
    }))
}

/// The refusal of a call whose payer has no fuel left to hold.
pub(crate) fn no_fuel(r: &Reservation) -> LedgerError {
    LedgerError::Insufficient {
        account: r.payer.to_string(),
        asset: Asset::Fuel,
        available: 0,
        needed: r.fuel_limit.max(1),
    }
}

/// Each party's account exists (each checked once: the payer is usually
/// the caller or the owner).
fn parties_exist(tx: &Connection, r: &Reservation) -> Result<(), LedgerError> {
    require_account(tx, r.caller.as_str())?;
    if r.owner != r.caller {
        require_account(tx, r.owner.as_str())?;
    }
    if r.payer != r.caller && r.payer != r.owner {
        require_account(tx, r.payer.as_str())?;
    }
    Ok(())
}

/// The payer's governing allocation, with this call's share of it held
/// (an API call, a concurrent task, its fuel); the inner error is the
/// allocations' refusal.
fn governing(tx: &Connection, r: &Reservation, now: i64) -> Result<Result<Option<Governed>, LedgerError>, LedgerError> {
    match alloc::governing(tx, r.payer.as_str(), now)? {
        Governing::Ungoverned => Ok(Ok(None)),
        Governing::Blocked(reason) => Ok(Err(LedgerError::AllocationRefused { agent: r.payer.to_string(), reason })),
        Governing::Active(mut a) => match alloc::hold_call(tx, &mut a, r.fuel_limit) {
            Ok(caps) => Ok(Ok(Some(Governed { id: a.id, caps }))),
            Err(refusal @ LedgerError::AllocationRefused { .. }) => Ok(Err(refusal)),
            Err(other) => Err(other),
        },
    }
}

/// The reservation row: who calls, owns and pays, under which grant and
/// allocation. Its key refuses a second reservation of the invocation.
fn record(tx: &Connection, r: &Reservation, allocation: Option<&str>) -> Result<(), LedgerError> {
    let inserted = exec(
        tx,
        "INSERT OR IGNORE INTO reservations
            (invocation_id, artifact, caller, owner, payer, resource_policy, sponsor_grant, allocation, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            r.invocation_id,
            r.artifact,
            r.caller.as_str(),
            r.owner.as_str(),
            r.payer.as_str(),
            r.resource_policy.as_str(),
            r.sponsor_grant,
            allocation,
            now_ms()
        ],
    )
    .map_err(storage)?;
    if inserted == 0 {
        return Err(LedgerError::DuplicateInvocation(r.invocation_id.clone()));
    }
    Ok(())
}

/// The sponsor grant paying this call: it must still cover the call, and
/// it holds the fuel it can still pay (at most `fuel`). Returns the fuel
/// to hold and the disk the grant has left.
fn hold_from_grant(
    tx: &Connection,
    r: &Reservation,
    grant_id: &str,
    fuel: u64,
    now: i64,
) -> Result<(u64, u64), LedgerError> {
    let unavailable = || LedgerError::GrantUnavailable(grant_id.to_string());
    let g = read_grant(tx, grant_id)?.ok_or_else(unavailable)?;
    if g.grant.sponsor != r.payer || g.grant.beneficiary != r.caller || !g.covers(&r.artifact, now) {
        return Err(unavailable());
    }
    let held: i64 =
        one(tx, "SELECT fuel_held FROM sponsor_grants WHERE id = ?1", [grant_id], |r| r.get(0)).map_err(storage)?;
    let remaining = g.grant.fuel_limit.saturating_sub(g.fuel_spent).saturating_sub(held as u64);
    if remaining == 0 {
        return Err(unavailable());
    }
    let fuel = fuel.min(remaining);
    if fuel > 0 {
        exec(tx, "UPDATE sponsor_grants SET fuel_held = fuel_held + ?2 WHERE id = ?1", params![grant_id, fuel as i64])
            .map_err(storage)?;
    }
    Ok((fuel, g.grant.disk_limit.saturating_sub(g.disk_spent)))
}

/// The allocation held all the fuel it allowed; give back what the payer's
/// budget (or its grant) did not let the call hold.
fn release_unheld_fuel(tx: &Connection, g: &Governed, fuel: u64) -> Result<(), LedgerError> {
    let extra = g.caps.fuel - fuel;
    if extra > 0 {
        exec(
            tx,
            "UPDATE allocation_quotas SET held = held - ?2 WHERE allocation = ?1 AND resource = 'fuel'",
            params![g.id, extra as i64],
        )
        .map_err(storage)?;
    }
    Ok(())
}
