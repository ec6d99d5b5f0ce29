//! The filesystem an artifact sees, mediated. wasmtime-wasi serves WASI's
//! filesystem over the owner's directory (its capability-based lookups
//! stop `..`, absolute paths and symlinks leading out); this module
//! shadows the functions that need more than that:
//!
//! - every `open-at` is a `file-open` action put to the policy chain first;
//! - every change that can grow or shrink the directory (`write`,
//!   `set-size`, the file streams of `write-via-stream` and
//!   `append-via-stream`, creating, linking, renaming and removing
//!   entries) is accounted by the call's [`DiskMeter`] under the
//!   directory's lock, before it happens: one over the payer's disk budget
//!   or the directory's entry limit fails with WASI's `quota` error
//!   (`filesystem-error-code` says `quota` for a refused stream write) and
//!   changes nothing.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::{DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult};

use crate::disk::{DiskMeter, DiskQuota};
use crate::sandbox::Sandbox;
use fuelhost_runtime::hostcall::{per_byte, CHEAP_IMPORT, FILE_OP, HOST_DECISION, PER_BYTE_MILLI};

/// The WASI filesystem interface whose functions are shadowed.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Bytes a file stream accepts per write (`check-write`).
const STREAM_WRITE_CAPACITY: usize = 1 << 20;

/// A WASI filesystem result as the guest receives it.
fn answer<T>(r: FsResult<T>) -> Answer<T> {
    match r {
        Ok(t) => Ok((Ok(t),)),
        Err(e) => {
            let code: wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode = e.downcast()?;
            Ok((Err(fs::ErrorCode::from(code)),))
        }
    }
}

/// What a refused change answers.
fn quota<T>() -> Answer<T> {
    Ok((Err(fs::ErrorCode::Quota),))
}

/// A second handle to a borrowed descriptor.
fn again(fd: &Resource<fs::Descriptor>) -> Resource<fs::Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// The open file behind `fd`, if it is one.
fn file_of(view: &WasiFilesystemCtxView<'_>, fd: &Resource<fs::Descriptor>) -> Option<Arc<std::fs::File>> {
    match view.table.get(fd) {
        Ok(Descriptor::File(f)) => Some(f.file.clone()),
        _ => None,
    }
}

/// The size of the file `file`, if it can be read.
fn size_of(file: &std::fs::File) -> Option<u64> {
    file.metadata().ok().map(|m| m.len())
}

/// What `path` (under `fd`) names now, if anything.
struct Existing {
    regular: bool,
    size: u64,
    links: u64,
}

impl Existing {
    fn at(
        view: &mut WasiFilesystemCtxView<'_>,
        fd: &Resource<fs::Descriptor>,
        flags: fs::PathFlags,
        path: &str,
    ) -> Option<Existing> {
        let stat = fs::HostDescriptor::stat_at(view, again(fd), flags, path.to_string()).ok()?;
        Some(Existing {
            regular: stat.type_ == fs::DescriptorType::RegularFile,
            size: stat.size,
            links: stat.link_count,
        })
    }

    /// Bytes removing it frees: a regular file's, if this was its data's
    /// last link.
    fn freed(&self) -> u64 {
        if self.regular && self.links <= 1 {
            self.size
        } else {
            0
        }
    }
}

/// Whether two paths name the same object (renaming one onto the other
/// changes nothing).
fn same_object(
    view: &mut WasiFilesystemCtxView<'_>,
    (fd_a, a): (&Resource<fs::Descriptor>, &str),
    (fd_b, b): (&Resource<fs::Descriptor>, &str),
) -> bool {
    let none = fs::PathFlags::empty();
    let ha = fs::HostDescriptor::metadata_hash_at(view, again(fd_a), none, a.to_string());
    let hb = fs::HostDescriptor::metadata_hash_at(view, again(fd_b), none, b.to_string());
    matches!((ha, hb), (Ok(x), Ok(y)) if (x.lower, x.upper) == (y.lower, y.upper))
}

impl Sandbox {
    /// The running call's disk meter.
    fn disk(&self) -> Arc<DiskMeter> {
        self.call.disk.clone()
    }

    /// Put a `file-open` action (target: the path as the guest gave it;
    /// attribute `mode`: `read`, `write`, `create` or `truncate`) to the
    /// policy chain; `Some(reason)` if it is refused.
    fn check_file_open(&mut self, path: &str, oflags: fs::OpenFlags, flags: fs::DescriptorFlags) -> Option<String> {
        let call = &mut self.call;
        let mode = if oflags.contains(fs::OpenFlags::TRUNCATE) {
            "truncate"
        } else if oflags.contains(fs::OpenFlags::CREATE) {
            "create"
        } else if flags.contains(fs::DescriptorFlags::WRITE) {
            "write"
        } else {
            "read"
        };
        let mut action = crate::actions::FILE_OPEN.action(
            call.principal.to_string(),
            path.to_string(),
            vec![("mode", mode.into()), ("via-artifact", call.context.artifact.clone())],
            0,
            crate::bindings::NO_USAGE,
        );
        let verdict = call.judge.judge(Some(&call.context.invocation_id), &mut action);
        self.guest.charge(verdict.fuel);
        verdict.refusal()
    }
}

type Store<'a> = StoreContextMut<'a, Sandbox>;
type Fd = Resource<fs::Descriptor>;
/// What a shadowed import returns: WASI's answer, or a trap.
type Answer<T> = wasmtime::Result<(Result<T, fs::ErrorCode>,)>;

/// Shadow the filesystem functions of `linker` (see the module docs).
pub fn shadow(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    let mut types = linker.instance(TYPES)?;
    types.func_wrap("[method]descriptor.open-at", open_at)?;
    types.func_wrap("[method]descriptor.read", read)?;
    types.func_wrap("[method]descriptor.write", write)?;
    types.func_wrap("[method]descriptor.set-size", set_size)?;
    types.func_wrap("[method]descriptor.write-via-stream", |mut store: Store<'_>, (fd, offset): (Fd, u64)| {
        metered_stream(&mut store, fd, Some(offset))
    })?;
    types.func_wrap("[method]descriptor.append-via-stream", |mut store: Store<'_>, (fd,): (Fd,)| {
        metered_stream(&mut store, fd, None)
    })?;
    types.func_wrap("[method]descriptor.create-directory-at", |mut store: Store<'_>, (fd, path): (Fd, String)| {
        new_entry(&mut store, |view| fs::HostDescriptor::create_directory_at(view, fd, path))
    })?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: Store<'_>, (fd, old_path, new_path): (Fd, String, String)| {
            new_entry(&mut store, |view| fs::HostDescriptor::symlink_at(view, fd, old_path, new_path))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |mut store: Store<'_>, (fd, flags, old_path, new_fd, new_path): (Fd, fs::PathFlags, String, Fd, String)| {
            new_entry(&mut store, |view| fs::HostDescriptor::link_at(view, fd, flags, old_path, new_fd, new_path))
        },
    )?;
    types.func_wrap("[method]descriptor.rename-at", rename_at)?;
    types.func_wrap("[method]descriptor.unlink-file-at", unlink_file_at)?;
    types.func_wrap("[method]descriptor.remove-directory-at", remove_directory_at)?;
    // The other operations that make a system call: priced, then served
    // as wasmtime-wasi serves them.
    macro_rules! priced {
        ($name:literal, $method:ident, ($($arg:ident: $ty:ty),*)) => {
            types.func_wrap($name, |mut store: Store<'_>, ($($arg,)*): ($($ty,)*)| {
                store.data_mut().guest.charge(FILE_OP);
                answer(fs::HostDescriptor::$method(&mut store.data_mut().filesystem(), $($arg),*))
            })?;
        };
    }
    priced!("[method]descriptor.stat", stat, (fd: Fd));
    priced!("[method]descriptor.stat-at", stat_at, (fd: Fd, flags: fs::PathFlags, path: String));
    priced!("[method]descriptor.get-type", get_type, (fd: Fd));
    priced!("[method]descriptor.get-flags", get_flags, (fd: Fd));
    priced!("[method]descriptor.read-directory", read_directory, (fd: Fd));
    priced!("[method]descriptor.readlink-at", readlink_at, (fd: Fd, path: String));
    priced!("[method]descriptor.sync", sync, (fd: Fd));
    priced!("[method]descriptor.sync-data", sync_data, (fd: Fd));
    priced!("[method]descriptor.advise", advise, (fd: Fd, offset: u64, len: u64, advice: fs::Advice));
    priced!("[method]descriptor.metadata-hash", metadata_hash, (fd: Fd));
    priced!("[method]descriptor.metadata-hash-at", metadata_hash_at, (fd: Fd, flags: fs::PathFlags, path: String));
    priced!("[method]descriptor.read-via-stream", read_via_stream, (fd: Fd, offset: u64));
    priced!(
        "[method]descriptor.set-times",
        set_times,
        (fd: Fd, atim: fs::NewTimestamp, mtim: fs::NewTimestamp)
    );
    priced!(
        "[method]descriptor.set-times-at",
        set_times_at,
        (fd: Fd, flags: fs::PathFlags, path: String, atim: fs::NewTimestamp, mtim: fs::NewTimestamp)
    );
    types.func_wrap(
        "[method]directory-entry-stream.read-directory-entry",
        |mut store: Store<'_>, (entries,): (Resource<fs::DirectoryEntryStream>,)| {
            store.data_mut().guest.charge(CHEAP_IMPORT);
            answer(fs::HostDirectoryEntryStream::read_directory_entry(&mut store.data_mut().filesystem(), entries))
        },
    )?;
    types.func_wrap("filesystem-error-code", |mut store: Store<'_>, (err,): (Resource<wasmtime::Error>,)| {
        let mut view = store.data_mut().filesystem();
        if view.table.get(&err)?.downcast_ref::<DiskQuota>().is_some() {
            return Ok((Some(fs::ErrorCode::Quota),));
        }
        Ok((fs::Host::filesystem_error_code(&mut view, err)?,))
    })?;
    Ok(())
}

/// `read`, priced by the bytes read.
fn read(mut store: Store<'_>, (fd, len, offset): (Fd, u64, u64)) -> Answer<(Vec<u8>, bool)> {
    let mut view = store.data_mut().filesystem();
    let read = fs::HostDescriptor::read(&mut view, fd, len, offset);
    let n = read.as_ref().map_or(0, |(bytes, _)| bytes.len());
    store.data_mut().guest.charge(FILE_OP + per_byte(n, PER_BYTE_MILLI));
    answer(read)
}

/// `write`: the growth past the file's end is asked of the disk meter
/// first; over the budget, nothing is written (`quota`).
fn write(mut store: Store<'_>, (fd, buf, offset): (Fd, Vec<u8>, u64)) -> Answer<u64> {
    store.data_mut().guest.charge(FILE_OP + per_byte(buf.len(), PER_BYTE_MILLI));
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let Some(file) = file_of(&view, &fd) else {
        return answer(fs::HostDescriptor::write(&mut view, fd, buf, offset));
    };
    let mut change = disk.change();
    let Some(before) = size_of(&file) else { return answer(fs::HostDescriptor::write(&mut view, fd, buf, offset)) };
    let growth = offset.saturating_add(buf.len() as u64).saturating_sub(before);
    if change.grow(growth).is_err() {
        return quota();
    }
    let written = fs::HostDescriptor::write(&mut view, fd, buf, offset);
    // What the write did not grow (it failed, or wrote less) is given back.
    let grew = size_of(&file).unwrap_or(before).saturating_sub(before);
    change.shrink(growth.saturating_sub(grew));
    answer(written)
}

/// `set-size`: growth asked of the disk meter first, a shrink given back.
fn set_size(mut store: Store<'_>, (fd, size): (Fd, u64)) -> Answer<()> {
    store.data_mut().guest.charge(FILE_OP);
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let Some(file) = file_of(&view, &fd) else {
        return answer(fs::HostDescriptor::set_size(&mut view, fd, size));
    };
    let mut change = disk.change();
    let Some(before) = size_of(&file) else { return answer(fs::HostDescriptor::set_size(&mut view, fd, size)) };
    if change.grow(size.saturating_sub(before)).is_err() {
        return quota();
    }
    let result = fs::HostDescriptor::set_size(&mut view, fd, size);
    let after = size_of(&file).unwrap_or(before);
    // Account what really changed: give back growth that did not
    // happen, and count a shrink.
    change.shrink(size.saturating_sub(before).saturating_sub(after.saturating_sub(before)));
    change.shrink(before.saturating_sub(after));
    answer(result)
}

/// `rename-at`: renaming onto an existing entry frees it.
fn rename_at(mut store: Store<'_>, (fd, old_path, new_fd, new_path): (Fd, String, Fd, String)) -> Answer<()> {
    store.data_mut().guest.charge(FILE_OP);
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let mut change = disk.change();
    // A rename onto an existing entry removes it (unless both
    // name the same object, when nothing changes).
    let replaced = Existing::at(&mut view, &new_fd, fs::PathFlags::empty(), &new_path)
        .filter(|_| !same_object(&mut view, (&fd, &old_path), (&new_fd, &new_path)));
    let result = fs::HostDescriptor::rename_at(&mut view, fd, old_path, new_fd, new_path);
    if let (Ok(()), Some(replaced)) = (&result, replaced) {
        change.remove_entry();
        change.shrink(replaced.freed());
    }
    answer(result)
}

/// `unlink-file-at`: the entry and its bytes are given back.
fn unlink_file_at(mut store: Store<'_>, (fd, path): (Fd, String)) -> Answer<()> {
    store.data_mut().guest.charge(FILE_OP);
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let mut change = disk.change();
    let before = Existing::at(&mut view, &fd, fs::PathFlags::empty(), &path);
    let result = fs::HostDescriptor::unlink_file_at(&mut view, fd, path);
    if result.is_ok() {
        change.remove_entry();
        change.shrink(before.map_or(0, |e| e.freed()));
    }
    answer(result)
}

/// `remove-directory-at`: the entry is given back.
fn remove_directory_at(mut store: Store<'_>, (fd, path): (Fd, String)) -> Answer<()> {
    store.data_mut().guest.charge(FILE_OP);
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let mut change = disk.change();
    let result = fs::HostDescriptor::remove_directory_at(&mut view, fd, path);
    if result.is_ok() {
        change.remove_entry();
    }
    answer(result)
}

/// `open-at`, put to the policy chain, and counted when it creates an
/// entry or truncates a file.
fn open_at(
    mut store: Store<'_>,
    (fd, path_flags, path, oflags, flags): (Fd, fs::PathFlags, String, fs::OpenFlags, fs::DescriptorFlags),
) -> Answer<Fd> {
    store.data_mut().guest.charge(HOST_DECISION + FILE_OP);
    if let Some(refusal) = store.data_mut().check_file_open(&path, oflags, flags) {
        tracing::info!(path = %path, %refusal, "file open denied");
        return Ok((Err(fs::ErrorCode::Access),));
    }
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let changes = oflags.intersects(fs::OpenFlags::CREATE | fs::OpenFlags::TRUNCATE);
    let Some(disk) = Some(disk).filter(|_| changes) else {
        return answer(fs::HostDescriptor::open_at(&mut view, fd, path_flags, path, oflags, flags));
    };
    let mut change = disk.change();
    let before = Existing::at(&mut view, &fd, path_flags, &path);
    let creates = before.is_none() && oflags.contains(fs::OpenFlags::CREATE);
    if creates && change.add_entry().is_err() {
        return quota();
    }
    let opened = fs::HostDescriptor::open_at(&mut view, fd, path_flags, path, oflags, flags);
    match (&opened, before) {
        (Err(_), _) if creates => change.remove_entry(),
        (Ok(_), Some(before)) if before.regular && oflags.contains(fs::OpenFlags::TRUNCATE) => {
            change.shrink(before.size)
        }
        _ => {}
    }
    answer(opened)
}

/// A change that creates one entry: counted (and refused at the limit)
/// first, uncounted if it fails.
fn new_entry(store: &mut Store<'_>, create: impl FnOnce(&mut WasiFilesystemCtxView<'_>) -> FsResult<()>) -> Answer<()> {
    store.data_mut().guest.charge(FILE_OP);
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let mut change = disk.change();
    if change.add_entry().is_err() {
        return quota();
    }
    let result = create(&mut view);
    if result.is_err() {
        change.remove_entry();
    }
    answer(result)
}

/// `write-via-stream` (`offset`) or `append-via-stream` (`None`): a
/// stream whose every write is accounted by the call's disk meter.
fn metered_stream(store: &mut Store<'_>, fd: Fd, offset: Option<u64>) -> Answer<Resource<DynOutputStream>> {
    store.data_mut().guest.charge(CHEAP_IMPORT);
    let disk = store.data().disk();
    let mut view = store.data_mut().filesystem();
    let file = match view.table.get(&fd) {
        Ok(Descriptor::File(f)) if f.perms.write_not_permitted() => return Ok((Err(fs::ErrorCode::NotPermitted),)),
        Ok(Descriptor::File(f)) => f.file.clone(),
        _ => {
            return answer(match offset {
                Some(offset) => fs::HostDescriptor::write_via_stream(&mut view, fd, offset),
                None => fs::HostDescriptor::append_via_stream(&mut view, fd),
            })
        }
    };
    let stream: DynOutputStream = Box::new(MeteredFile { file, offset, disk, closed: false });
    Ok((Ok(view.table.push(stream)?),))
}

/// A file's output stream whose writes are accounted before they happen.
/// Writes are synchronous (the run's thread may block on file I/O).
struct MeteredFile {
    file: Arc<std::fs::File>,
    /// Where the next write goes; `None`: at the end (append).
    offset: Option<u64>,
    disk: Arc<DiskMeter>,
    closed: bool,
}

impl MeteredFile {
    /// The stream fails for good (WASI: the failed operation's error, then
    /// `closed`).
    fn fail(&mut self, error: impl std::error::Error + Send + Sync + 'static) -> StreamError {
        self.closed = true;
        StreamError::LastOperationFailed(wasmtime::Error::new(error))
    }
}

impl OutputStream for MeteredFile {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let disk = self.disk.clone();
        let mut change = disk.change();
        let before = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Err(self.fail(e)),
        };
        let offset = self.offset.unwrap_or(before);
        let growth = offset.saturating_add(bytes.len() as u64).saturating_sub(before);
        if let Err(q) = change.grow(growth) {
            return Err(self.fail(q));
        }
        if let Err(e) = self.file.write_all_at(&bytes, offset) {
            let grew = size_of(&self.file).unwrap_or(before).saturating_sub(before);
            change.shrink(growth.saturating_sub(grew));
            return Err(self.fail(e));
        }
        if let Some(at) = self.offset.as_mut() {
            *at += bytes.len() as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        Ok(STREAM_WRITE_CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for MeteredFile {
    /// Writes complete before they return, so the stream is always ready.
    async fn ready(&mut self) {}
}
