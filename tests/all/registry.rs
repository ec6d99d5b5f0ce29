//! Uploads: validation against the artifact world, clear refusals that
//! leave the registry unchanged, and the precompiled cache across restarts.

use fuelhost::{Invocation, Limits, Manifest, ResourcePolicy, UploadError};
use fuelhost_tests::{guest, manifest, shared_compile_cache, test_host};

fn count_rows(dir: &std::path::Path) -> i64 {
    fuelhost_tests::tables(dir).count("SELECT COUNT(*) FROM artifacts")
}

fn assert_unchanged(t: &fuelhost_tests::TestHost) {
    assert!(t.host.artifacts().is_empty());
    assert_eq!(count_rows(t.dir.path()), 0);
}

#[test]
fn accepts_a_rust_artifact_and_lists_it() {
    let t = test_host();
    let info =
        t.host.upload(manifest("echo", 5, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap();
    assert_eq!(info.id, "alice/echo@0.1.0");
    assert_eq!(info.digest.len(), 64);
    assert_eq!(t.host.artifacts(), vec![info]);
    assert_eq!(count_rows(t.dir.path()), 1);
}

#[test]
fn refuses_a_policy_plugin_as_artifact_naming_the_missing_export() {
    let t = test_host();
    let err = t
        .host
        .upload(manifest("wrong", 0, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-spend-limit"))
        .unwrap_err();
    assert!(matches!(err, UploadError::MissingExport(..)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("missing export `run`") && msg.contains("fuelhost:host/policy@0.1.0"), "{msg}");
    assert_unchanged(&t);
}

#[test]
fn refuses_an_artifact_as_policy_plugin() {
    let t = test_host();
    let err = t.host.add_policy_plugin("probe", &guest("rust-probe")).unwrap_err();
    assert!(err.to_string().contains("policy-plugin"), "{err}");
    assert!(t.host.policy_plugins().is_empty());
}

#[test]
fn refuses_an_unsatisfiable_import_naming_it() {
    let t = test_host();
    let wat = r#"(component
        (import "acme:secrets/vault@1.0.0" (instance (export "open" (func))))
        (core module $m (func (export "run") (param i32 i32) (result i32) unreachable))
    )"#;
    let err = t.host.upload(manifest("vault", 0, ResourcePolicy::CallerPays, Limits::default()), wat.as_bytes());
    // Text is not a binary: refused before compiling.
    assert!(matches!(err, Err(UploadError::NotAComponent(_))), "{err:?}");
    let bytes = wat::parse_str(wat).unwrap();
    let err = t.host.upload(manifest("vault", 0, ResourcePolicy::CallerPays, Limits::default()), &bytes).unwrap_err();
    assert!(matches!(err, UploadError::UnsatisfiableImport(..)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("acme:secrets/vault@1.0.0") && msg.contains("`artifact` world"), "{msg}");
    assert_unchanged(&t);
}

#[test]
fn refuses_core_modules_garbage_and_oversize_uploads() {
    let t = test_host();
    let m = || manifest("x", 0, ResourcePolicy::CallerPays, Limits::default());
    let core = wat::parse_str("(module)").unwrap();
    let err = t.host.upload(m(), &core).unwrap_err();
    assert!(err.to_string().contains("core WebAssembly module, not a component"), "{err}");
    let err = t.host.upload(m(), b"definitely not wasm").unwrap_err();
    assert!(err.to_string().contains("not a WebAssembly binary"), "{err}");
    let mut broken = guest("rust-echo");
    broken.truncate(broken.len() / 2);
    assert!(matches!(t.host.upload(m(), &broken).unwrap_err(), UploadError::Invalid(_)));
    assert_unchanged(&t);

    let small = fuelhost_tests::builder(&t.dir.path().join("small"))
        .max_component_bytes(1024)
        .max_instances(2)
        .build()
        .unwrap();
    small.create_agent("alice").unwrap();
    let err = small.upload(m(), &guest("rust-echo")).unwrap_err();
    assert!(matches!(err, UploadError::TooLarge { max: 1024, .. }), "{err:?}");
    assert!(small.artifacts().is_empty());
}

#[test]
fn refuses_bad_manifests_unknown_owners_and_reused_versions() {
    let err = Manifest::from_toml(
        "owner = \"alice\"\nname = \"e\"\nversion = \"1\"\nresource_policy = \"caller_pays\"\ncolour = \"red\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    let err = Manifest::from_toml("owner = \"alice\"\nname = \"e\"\nversion = \"1\"\nresource_policy = \"whoever\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("caller_pays"), "{err}");
    let err =
        Manifest::from_toml("owner = \"Alice!\"\nname = \"e\"\nversion = \"1\"\nresource_policy = \"owner_pays\"\n")
            .unwrap_err();
    assert!(err.to_string().contains("invalid agent id"), "{err}");
    let err = Manifest::from_toml(
        "owner = \"alice\"\nname = \"e\"\nversion = \"1\"\nresource_policy = \"owner_pays\"\n[limits]\nfuel = 0\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("limits.fuel"), "{err}");
    let base = "owner = \"alice\"\nname = \"e\"\nversion = \"1\"\nresource_policy = \"owner_pays\"\n";
    let err = Manifest::from_toml(&format!("{base}capabilities = [\"Sum Up\"]\n")).unwrap_err();
    assert!(err.to_string().contains("capabilities"), "{err}");
    let err = Manifest::from_toml(&format!("{base}quality = 101\n")).unwrap_err();
    assert!(err.to_string().contains("between 0 and 100"), "{err}");
    let ok = Manifest::from_toml(&format!("{base}capabilities = [\"sum-up\"]\nquality = 90\n")).unwrap();
    assert_eq!((ok.capabilities, ok.quality), (vec!["sum-up".to_string()], Some(90)));

    let t = test_host();
    let mut m = manifest("echo", 0, ResourcePolicy::CallerPays, Limits::default());
    m.owner = "nobody".try_into().unwrap();
    assert!(matches!(t.host.upload(m, &guest("rust-echo")).unwrap_err(), UploadError::UnknownOwner(_)));
    assert_unchanged(&t);

    let m = manifest("echo", 0, ResourcePolicy::CallerPays, Limits::default());
    t.host.upload(m.clone(), &guest("rust-echo")).unwrap();
    let err = t.host.upload(m, &guest("rust-probe")).unwrap_err();
    assert!(matches!(err, UploadError::AlreadyExists(_)), "{err:?}");
    assert_eq!(count_rows(t.dir.path()), 1);
}

#[test]
fn precompiled_code_is_reused_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let open = || fuelhost_tests::builder(dir.path()).compile_cache_dir(&cache).max_instances(4).build().unwrap();
    {
        let host = open();
        host.create_agent("alice").unwrap();
        host.create_agent("bob").unwrap();
        fuelhost_tests::fund(&host, "bob", 100, 10_000_000, 0);
        host.upload(manifest("echo", 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap();
        assert_eq!(host.cache_stats().compilations, 1);
        let files: Vec<String> =
            std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(files.iter().filter(|f| f.ends_with(".cwasm")).count(), 1, "{files:?}");
        assert!(files.iter().any(|f| f.ends_with(".interface.json")), "how it is called is noted beside: {files:?}");
    }
    let host = open();
    let stats = host.cache_stats();
    assert_eq!((stats.compilations, stats.hits), (0, 1), "restart must load precompiled code, not compile");
    let report = host.invoke(Invocation::new("bob", "alice/echo@0.1.0", "again")).unwrap();
    assert_eq!(report.output, b"again");
    assert_eq!(host.cache_stats().compilations, 0);
    let _ = shared_compile_cache();
}

/// A start whose compile cache lost its code lists every artifact and
/// serves at once: what the background has not compiled yet, a call
/// compiles first, and no code is compiled twice between them.
#[test]
fn a_start_without_compiled_code_serves_while_it_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let open = || fuelhost_tests::builder(dir.path()).compile_cache_dir(&cache).max_instances(4).build().unwrap();
    let artifacts = [("echo", "rust-echo"), ("echo-2", "rust-echo"), ("probe", "rust-probe")];
    {
        let host = open();
        host.create_agent("alice").unwrap();
        host.create_agent("bob").unwrap();
        fuelhost_tests::fund(&host, "bob", 100, 10_000_000, 0);
        for (name, guest_name) in artifacts {
            host.upload(manifest(name, 1, ResourcePolicy::CallerPays, Limits::default()), &guest(guest_name)).unwrap();
        }
        assert_eq!(host.warming(), None, "uploads are compiled as they come");
    }
    std::fs::remove_dir_all(&cache).unwrap();
    let host = open();
    assert_eq!(host.artifacts().len(), 3, "every artifact is listed before it is compiled");
    let report = host.invoke(Invocation::new("bob", "alice/echo-2@0.1.0", "first")).unwrap();
    assert_eq!(report.output, b"first");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while let Some(left) = host.warming() {
        assert!(std::time::Instant::now() < deadline, "{left} artifacts still not compiled after two minutes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(host.cache_stats().compilations, 2, "each digest is compiled once");
    let report = host.invoke(Invocation::new("bob", "alice/echo@0.1.0", "second")).unwrap();
    assert_eq!(report.output, b"second");
    assert_eq!(host.cache_stats().compilations, 2);
}

#[test]
fn artifacts_of_the_same_bytes_share_their_compiled_code() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let open = || fuelhost_tests::builder(dir.path()).compile_cache_dir(&cache).max_instances(4).build().unwrap();
    let names = ["echo", "echo-2", "echo-3"];
    {
        let host = open();
        host.create_agent("alice").unwrap();
        host.create_agent("bob").unwrap();
        fuelhost_tests::fund(&host, "bob", 100, 10_000_000, 0);
        for name in names {
            host.upload(manifest(name, 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap();
        }
        // Compiled once, and the second and third never asked the cache.
        assert_eq!((host.cache_stats().compilations, host.cache_stats().hits), (1, 0));
        // Deleting the first leaves the others' code running.
        host.delete_artifact("alice/echo@0.1.0").unwrap().expect("it was there");
        let report = host.invoke(Invocation::new("bob", "alice/echo-3@0.1.0", "shared")).unwrap();
        assert_eq!(report.output, b"shared");
    }
    // After a restart the two left load their code once between them.
    let host = open();
    assert_eq!((host.cache_stats().compilations, host.cache_stats().hits), (0, 1));
    for name in &names[1..] {
        let report = host.invoke(Invocation::new("bob", format!("alice/{name}@0.1.0"), "again")).unwrap();
        assert_eq!(report.output, b"again");
    }
}

/// `component` with a custom section naming `i` appended: other bytes
/// (another digest, so code of its own), the same behaviour.
fn distinct(component: &[u8], i: u8) -> Vec<u8> {
    let mut out = component.to_vec();
    out.extend_from_slice(&[0, 7, 5, b'i', b'n', b'd', b'e', b'x', i]);
    out
}

/// A host holds at most `max_loaded_artifacts` loaded: past it, the ones
/// called least recently are unloaded, and their next call loads them
/// again from the compile cache, never compiling anything twice; a
/// restart loads no more than the maximum either.
#[test]
fn loaded_code_is_bounded_and_reloaded_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let open = || {
        fuelhost_tests::builder(dir.path())
            .compile_cache_dir(&cache)
            .max_instances(4)
            .max_loaded_artifacts(2)
            .build()
            .unwrap()
    };
    let echo = guest("rust-echo");
    let host = open();
    host.create_agent("alice").unwrap();
    host.create_agent("bob").unwrap();
    fuelhost_tests::fund(&host, "bob", 1_000, 100_000_000, 0);
    for i in 0..4u8 {
        let m = manifest(&format!("echo-{i}"), 1, ResourcePolicy::CallerPays, Limits::default());
        host.upload(m, &distinct(&echo, i)).unwrap();
        assert!(host.loaded_artifacts() <= 2, "{} loaded after upload {i}", host.loaded_artifacts());
    }
    assert_eq!(host.cache_stats().compilations, 4);
    for round in 0..3 {
        for i in 0..4 {
            let input = format!("round {round}, echo {i}");
            let report = host.invoke(Invocation::new("bob", format!("alice/echo-{i}@0.1.0"), input.clone())).unwrap();
            assert_eq!(report.output, input.as_bytes());
            assert!(host.loaded_artifacts() <= 2, "{} loaded", host.loaded_artifacts());
        }
    }
    assert_eq!(host.cache_stats().compilations, 4, "unloaded code is loaded again, not compiled");
    assert!(host.cache_stats().hits >= 8, "{:?}", host.cache_stats());
    assert_eq!(host.artifacts().len(), 4, "unloaded artifacts are still listed");
    drop(host);

    let host = open();
    assert!(host.loaded_artifacts() <= 2);
    assert_eq!(host.warming(), None, "unloaded is not uncompiled");
    for i in 0..4 {
        let report = host.invoke(Invocation::new("bob", format!("alice/echo-{i}@0.1.0"), "again")).unwrap();
        assert_eq!(report.output, b"again");
    }
    assert_eq!(host.cache_stats().compilations, 0);
    drop(host);

    // Without the compile cache: the background compiles every one once,
    // loading no more than the maximum (past it, into the cache only).
    std::fs::remove_dir_all(&cache).unwrap();
    let host = open();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while let Some(left) = host.warming() {
        assert!(std::time::Instant::now() < deadline, "{left} artifacts still not compiled after two minutes");
        assert!(host.loaded_artifacts() <= 2, "{} loaded while warming", host.loaded_artifacts());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(host.cache_stats().compilations, 4);
    for i in 0..4 {
        let report = host.invoke(Invocation::new("bob", format!("alice/echo-{i}@0.1.0"), "warm")).unwrap();
        assert_eq!(report.output, b"warm");
    }
    assert_eq!(host.cache_stats().compilations, 4, "compiled once, by the background");
    assert!(host.loaded_artifacts() <= 2);
}

/// How an artifact is called (its kind, its exports) is listed without
/// loading its code: from the code when it is loaded, else from the note
/// its bytes left beside their compiled code, after a restart too.
#[test]
fn artifacts_not_loaded_are_listed_without_loading_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let open =
        || fuelhost_tests::builder(dir.path()).compile_cache_dir(&cache).max_loaded_artifacts(1).build().unwrap();
    let adder = guest("rust-adder");
    let host = open();
    host.create_agent("alice").unwrap();
    for i in 0..3u8 {
        let m = manifest(&format!("adder-{i}"), 1, ResourcePolicy::CallerPays, Limits::default());
        host.upload(m, &distinct(&adder, i)).unwrap();
    }
    let check = |host: &fuelhost::Host| {
        let before = host.cache_stats();
        for i in 0..3 {
            let id = format!("alice/adder-{i}@0.1.0");
            assert_eq!(host.artifact_kind(&id).unwrap(), Some("exports"));
            let names: Vec<String> = host.artifact_exports(&id).unwrap().unwrap().into_iter().map(|f| f.name).collect();
            assert_eq!(names, ["add", "area", "farthest", "spin"]);
        }
        assert_eq!(host.cache_stats(), before, "nothing was loaded or compiled to list them");
        assert!(host.loaded_artifacts() <= 1);
    };
    check(&host);
    drop(host);
    let host = open();
    check(&host);
    assert_eq!(host.artifact_kind("alice/nothing@1").unwrap(), None);
}

#[test]
fn a_deleted_artifact_stays_deleted_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || fuelhost_tests::builder(dir.path()).max_instances(4).build().unwrap();
    {
        let host = open();
        host.create_agent("alice").unwrap();
        host.create_agent("bob").unwrap();
        fuelhost_tests::fund(&host, "bob", 100, 10_000_000, 0);
        for name in ["echo", "keep"] {
            host.upload(manifest(name, 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap();
        }
        let deleted = host.delete_artifact("alice/echo@0.1.0").unwrap().expect("it was there");
        assert_eq!(deleted.id, "alice/echo@0.1.0");
        assert!(deleted.uploaded_ms > 0);
        assert_eq!(host.delete_artifact("alice/echo@0.1.0").unwrap(), None, "deleting twice finds nothing");
        assert_eq!(host.artifact("alice/echo@0.1.0"), None);
        let err = host.invoke(Invocation::new("bob", "alice/echo@0.1.0", "x")).unwrap_err();
        assert!(matches!(err, fuelhost::InvokeError::UnknownArtifact(_)), "{err:?}");
    }
    let host = open();
    assert_eq!(host.artifacts().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["alice/keep@0.1.0"]);
    assert_eq!(count_rows(dir.path()), 1);
    let err = host.invoke(Invocation::new("bob", "alice/echo@0.1.0", "x")).unwrap_err();
    assert!(matches!(err, fuelhost::InvokeError::UnknownArtifact(_)), "{err:?}");
    assert_eq!(host.invoke(Invocation::new("bob", "alice/keep@0.1.0", "still")).unwrap().output, b"still");
    // The id is free again.
    host.upload(manifest("echo", 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap();
}
