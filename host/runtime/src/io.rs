//! The WASI streams and polls a guest waits on, mediated: every wait ends
//! at the call's deadline, and every byte a stream moves is charged.
//!
//! wasmtime-wasi answers `wasi:io` for a synchronous host by blocking the
//! run's thread until the awaited thing is ready: a guest that sleeps, or
//! reads a response body a server trickles out, would hold its instance
//! slot and thread past its timeout, where no epoch or fuel check can
//! reach it. These shadows run the same waits with the sandbox's deadline
//! ([`GuestCtx::wait_limit`](crate::GuestCtx::wait_limit)): at the deadline, or when the run is
//! cancelled, the call traps (`timeout`, or `aborted` for a cancel), and
//! the caller is charged what it used. Data moved through any stream
//! (files, standard output, HTTP bodies) costs fuel per byte
//! ([`crate::hostcall`]).

use std::future::Future;

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{StoreContextMut, Trap};
use wasmtime_wasi::p2::bindings::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamResult};

use crate::guest::Guest;
use crate::hostcall::{per_byte, CHEAP_IMPORT, FILE_OP, PER_BYTE_MILLI};
use crate::wait::WaitLimit;

/// Run `wait` on the runtime that serves WASI, ending it (a trap the run
/// reports as `timeout`) at `limit`.
fn bounded<F: Future>(limit: Option<WaitLimit>, wait: F) -> wasmtime::Result<F::Output> {
    let Some(limit) = limit else { return Ok(wasmtime_wasi::runtime::in_tokio(wait)) };
    wasmtime_wasi::runtime::in_tokio(async move {
        tokio::select! {
            out = wait => Ok(out),
            () = limit.reached() => Err(Trap::Interrupt.into()),
        }
    })
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// The guest's resource table and its wait limit.
fn parts<'a, T: Guest>(store: &'a mut Store<'_, T>) -> (&'a mut ResourceTable, Option<WaitLimit>) {
    let limit = store.data().guest_ref().wait_limit.clone();
    (store.data_mut().guest().table(), limit)
}

/// A stream result as the guest receives it.
fn answer<T>(table: &mut ResourceTable, r: StreamResult<T>) -> wasmtime::Result<(Result<T, streams::StreamError>,)> {
    match r {
        Ok(t) => Ok((Ok(t),)),
        Err(e) => Ok((Err(streams::Host::convert_stream_error(table, e)?),)),
    }
}

/// Charge a stream operation that moved `n` bytes (a stream's read or
/// write is a system call for files and sockets).
fn charge_bytes<T: Guest>(store: &mut Store<'_, T>, n: usize) {
    store.data_mut().guest().charge(FILE_OP + per_byte(n, PER_BYTE_MILLI));
}

/// The `wasi:io` version whose functions are shadowed.
const POLL: &str = "wasi:io/poll@0.2.12";
const STREAMS: &str = "wasi:io/streams@0.2.12";

type In = Resource<DynInputStream>;
type Out = Resource<DynOutputStream>;

/// Shadow the waiting and data-moving functions of `wasi:io` in `linker`.
pub fn shadow<T: Guest>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut p = linker.instance(POLL)?;
    p.func_wrap("poll", |mut store: Store<'_, T>, (list,): (Vec<Resource<DynPollable>>,)| {
        store.data_mut().guest().charge(CHEAP_IMPORT + CHEAP_IMPORT * list.len() as u64);
        let (table, limit) = parts(&mut store);
        Ok((bounded(limit, poll::Host::poll(table, list))??,))
    })?;
    p.func_wrap("[method]pollable.block", |mut store: Store<'_, T>, (pollable,): (Resource<DynPollable>,)| {
        store.data_mut().guest().charge(CHEAP_IMPORT);
        let (table, limit) = parts(&mut store);
        bounded(limit, poll::HostPollable::block(table, pollable))??;
        Ok(())
    })?;

    let mut s = linker.instance(STREAMS)?;
    s.func_wrap("[method]input-stream.read", |mut store: Store<'_, T>, (stream, len): (In, u64)| {
        let (table, _) = parts(&mut store);
        let read = streams::HostInputStream::read(table, stream, len);
        let n = read.as_ref().map_or(0, Vec::len);
        let answer = answer(table, read);
        charge_bytes(&mut store, n);
        answer
    })?;
    s.func_wrap("[method]input-stream.blocking-read", |mut store: Store<'_, T>, (stream, len): (In, u64)| {
        let (table, limit) = parts(&mut store);
        let read = bounded(limit, streams::HostInputStream::blocking_read(table, stream, len))?;
        let n = read.as_ref().map_or(0, Vec::len);
        let answer = answer(table, read);
        charge_bytes(&mut store, n);
        answer
    })?;
    s.func_wrap("[method]input-stream.blocking-skip", |mut store: Store<'_, T>, (stream, len): (In, u64)| {
        store.data_mut().guest().charge(FILE_OP);
        let (table, limit) = parts(&mut store);
        let skipped = bounded(limit, streams::HostInputStream::blocking_skip(table, stream, len))?;
        answer(table, skipped)
    })?;
    s.func_wrap("[method]output-stream.write", |mut store: Store<'_, T>, (stream, bytes): (Out, Vec<u8>)| {
        let n = bytes.len();
        let (table, _) = parts(&mut store);
        let written = streams::HostOutputStream::write(table, stream, bytes);
        let answer = answer(table, written);
        charge_bytes(&mut store, n);
        answer
    })?;
    s.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: Store<'_, T>, (stream, bytes): (Out, Vec<u8>)| {
            let n = bytes.len();
            let (table, limit) = parts(&mut store);
            let written = bounded(limit, streams::HostOutputStream::blocking_write_and_flush(table, stream, bytes))?;
            let answer = answer(table, written);
            charge_bytes(&mut store, n);
            answer
        },
    )?;
    s.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: Store<'_, T>, (stream, len): (Out, u64)| {
            let (table, limit) = parts(&mut store);
            let written =
                bounded(limit, streams::HostOutputStream::blocking_write_zeroes_and_flush(table, stream, len))?;
            let answer = answer(table, written);
            charge_bytes(&mut store, usize::try_from(len).unwrap_or(usize::MAX));
            answer
        },
    )?;
    s.func_wrap("[method]output-stream.blocking-flush", |mut store: Store<'_, T>, (stream,): (Out,)| {
        store.data_mut().guest().charge(FILE_OP);
        let (table, limit) = parts(&mut store);
        let flushed = bounded(limit, streams::HostOutputStream::blocking_flush(table, stream))?;
        answer(table, flushed)
    })?;
    s.func_wrap("[method]output-stream.splice", |mut store: Store<'_, T>, (dest, src, len): (Out, In, u64)| {
        let (table, _) = parts(&mut store);
        let spliced = streams::HostOutputStream::splice(table, dest, src, len);
        let n = spliced.as_ref().map_or(0, |&n| n as usize);
        let answer = answer(table, spliced);
        charge_bytes(&mut store, n);
        answer
    })?;
    s.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut store: Store<'_, T>, (dest, src, len): (Out, In, u64)| {
            let (table, limit) = parts(&mut store);
            let spliced = bounded(limit, streams::HostOutputStream::blocking_splice(table, dest, src, len))?;
            let n = spliced.as_ref().map_or(0, |&n| n as usize);
            let answer = answer(table, spliced);
            charge_bytes(&mut store, n);
            answer
        },
    )?;
    Ok(())
}
