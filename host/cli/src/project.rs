//! Guest projects: `fuelhost new` writes one from a template (an artifact or
//! a policy plugin in Rust, Python, JavaScript, TypeScript or C, with the
//! WIT contract and, for Rust, the guest SDK vendored, so it builds outside
//! the repository), and `fuelhost build` turns a project folder into a
//! component with the toolchain `scripts/setup.sh` installed, saying what
//! is missing and how to get it when it is not there.
//!
//! A folder's language is read from its files: `Cargo.toml` (Rust),
//! `app.py` (Python), `app.js` (JavaScript), `app.ts` (TypeScript), `*.c`
//! (C), `plugin.wat` (WAT);
//! its world from a file `world` (`artifact` when there is none; a world of
//! `fuelhost:host@0.2.0`, such as `fuelhost:host/artifact@0.2.0`, is built
//! against `wit-0.2.0/`, which can also call a language model). The
//! component is written to `<folder>/<folder name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::exit::Usage;

/// What a project makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// An artifact: `run(input) -> output`, invoked and charged.
    Artifact,
    /// A policy plugin: `check(action) -> decision`.
    Policy,
}

impl Kind {
    fn world(self) -> &'static str {
        match self {
            Kind::Artifact => "artifact",
            Kind::Policy => "policy-plugin",
        }
    }
}

/// The languages `fuelhost new` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    #[value(alias = "javascript")]
    Js,
    #[value(alias = "typescript")]
    Ts,
    C,
}

/// The WIT contract, vendored into every project: `wit/` (0.1.0), and
/// `wit-0.2.0/` (0.2.0's `llm`), whose `deps/` are links into `wit/` in the
/// repository and copies in a project.
const WIT: [(&str, &str); 19] = [
    ("wit/worlds.wit", include_str!("../../../wit/worlds.wit")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/ledger.wit", include_str!("../../../wit/ledger.wit")),
    ("wit/policy.wit", include_str!("../../../wit/policy.wit")),
    ("wit/invoke.wit", include_str!("../../../wit/invoke.wit")),
    ("wit/tasks.wit", include_str!("../../../wit/tasks.wit")),
    ("wit/deps/filesystem/filesystem.wit", include_str!("../../../wit/deps/filesystem/filesystem.wit")),
    ("wit/deps/clocks/clocks.wit", include_str!("../../../wit/deps/clocks/clocks.wit")),
    ("wit/deps/io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    ("wit-0.2.0/llm.wit", include_str!("../../../wit-0.2.0/llm.wit")),
    ("wit-0.2.0/deps/fuelhost-host/worlds.wit", include_str!("../../../wit/worlds.wit")),
    ("wit-0.2.0/deps/fuelhost-host/types.wit", include_str!("../../../wit/types.wit")),
    ("wit-0.2.0/deps/fuelhost-host/ledger.wit", include_str!("../../../wit/ledger.wit")),
    ("wit-0.2.0/deps/fuelhost-host/policy.wit", include_str!("../../../wit/policy.wit")),
    ("wit-0.2.0/deps/fuelhost-host/invoke.wit", include_str!("../../../wit/invoke.wit")),
    ("wit-0.2.0/deps/fuelhost-host/tasks.wit", include_str!("../../../wit/tasks.wit")),
    ("wit-0.2.0/deps/filesystem/filesystem.wit", include_str!("../../../wit/deps/filesystem/filesystem.wit")),
    ("wit-0.2.0/deps/clocks/clocks.wit", include_str!("../../../wit/deps/clocks/clocks.wit")),
    ("wit-0.2.0/deps/io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
];

/// The Rust guest SDK, vendored into Rust projects (it generates its
/// bindings from `../wit`, the project's copy).
const GUEST_SDK: [(&str, &str); 2] = [
    ("fuelhost-guest/Cargo.toml", include_str!("../../../guest-sdk/Cargo.toml")),
    ("fuelhost-guest/src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
];

/// `fuelhost new KIND LANG NAME`: the project's files, written into a new
/// folder `dir`; returns what to tell the user.
pub fn new(dir: &Path, kind: Kind, lang: Lang, owner: &str) -> Result<String> {
    let name = dir.file_name().and_then(|n| n.to_str()).context("name the project's folder")?.to_string();
    if !fuelhost::valid_name(&name) {
        return Err(Usage(format!(
            "`{name}` cannot name an artifact: use lowercase letters, digits and '-' (it becomes the artifact's name)"
        ))
        .into());
    }
    if lang == Lang::Rust && name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(
            Usage(format!("`{name}` cannot name a Rust package (it starts with a digit): choose another")).into()
        );
    }
    if fuelhost::AgentId::new(owner).is_err() {
        return Err(Usage(format!(
            "`{owner}` is not an agent id (--owner): use 1 to 64 characters of a-z, 0-9, '-' and '_'"
        ))
        .into());
    }
    if dir.exists() && std::fs::read_dir(dir).map(|mut e| e.next().is_some()).unwrap_or(true) {
        return Err(Usage(format!("{} exists and is not empty: choose a new folder", dir.display())).into());
    }
    let mut files: Vec<(String, String)> = WIT.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    files.push(("world".into(), format!("{}\n", kind.world())));
    files.push((".gitignore".into(), "*.wasm\ntarget/\n__pycache__/\nnode_modules/\n".into()));
    let readme = readme(&name, kind, lang);
    files.push(("README.md".into(), readme));
    if kind == Kind::Artifact {
        files.push(("manifest.toml".into(), manifest(&name, owner)));
    }
    match lang {
        Lang::Rust => {
            files.extend(GUEST_SDK.iter().map(|(p, t)| (p.to_string(), t.to_string())));
            files.push(("Cargo.toml".into(), rust_manifest(&name)));
            // The versions the repository's guests build with.
            files.push(("Cargo.lock".into(), include_str!("../../../plugins/Cargo.lock").into()));
            files.push(("src/lib.rs".into(), rust_source(&name, kind)));
        }
        Lang::Python => files.push(("app.py".into(), python_source(&name, kind))),
        Lang::Js => files.push(("app.js".into(), js_source(&name, kind))),
        Lang::Ts => files.push(("app.ts".into(), ts_source(&name, kind))),
        Lang::C => files.push(("app.c".into(), c_source(&name, kind))),
    }
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let next = match kind {
        Kind::Artifact => format!("fuelhost upload {}", dir.display()),
        Kind::Policy => format!("fuelhost policy add {name} {}", dir.display()),
    };
    Ok(format!(
        "made {} ({} {}, {} files)\nnext: {next} (builds it first; `fuelhost build {}` builds alone)\n",
        dir.display(),
        lang_name(lang),
        kind.world(),
        files.len(),
        dir.display()
    ))
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
        Lang::Ts => "TypeScript",
        Lang::C => "C",
    }
}

fn readme(name: &str, kind: Kind, lang: Lang) -> String {
    let what = match kind {
        Kind::Artifact => "A fuelhost artifact: `run` gets the caller's input and returns the answer; each call is metered and charged.",
        Kind::Policy => "A fuelhost policy plugin: `check` judges each action the host puts to the policy chain (see the host's docs/actions.md for what each kind carries).",
    };
    let source = match lang {
        Lang::Rust => "src/lib.rs",
        Lang::Python => "app.py",
        Lang::Js => "app.js",
        Lang::Ts => "app.ts",
        Lang::C => "app.c",
    };
    let then = match kind {
        Kind::Artifact => format!("    fuelhost upload .            # builds, then uploads with manifest.toml\n    fuelhost invoke OWNER/{name}@0.1.0 \"hello\""),
        Kind::Policy => format!("    fuelhost policy add {name} .  # builds, then adds it to the chain (admin key)"),
    };
    let notes = if lang == Lang::C { c_readme(kind) } else { String::new() };
    format!(
        "# {name}\n\n{what} Written in {}: edit `{source}`.\n\n    fuelhost build               # writes {name}.wasm\n{then}\n\n\
         {notes}`wit/` is the host's WIT contract, vendored: keep it as it is.\n",
        lang_name(lang)
    )
}

/// What a C project's README adds: how it is built, and who frees what.
fn c_readme(kind: Kind) -> String {
    let (header, entry) = match kind {
        Kind::Artifact => ("artifact", "exports_artifact_run"),
        Kind::Policy => ("policy_plugin", "exports_fuelhost_host_policy_check"),
    };
    format!(
        "`fuelhost build` generates the bindings (`{header}.h`, `{header}.c`) from `wit/` with `wit-bindgen c` in a \
         scratch folder, compiles them and every `.c` file of this folder with clang against wasi-libc, and makes \
         the component with the WASI preview-1 adapter; `scripts/setup.sh` of the fuelhost repository installs \
         these tools. Keep generated bindings out of this folder: a `.c` file here is compiled, a header here is \
         included before the build's own.\n\n\
         Memory follows the canonical ABI: the arguments of `{entry}` are yours to free (the template frees them); \
         what it returns is freed by the generated code after the call, so allocate it (`malloc`, `*_string_dup`), \
         never point it at a literal or the stack. What an import returns is yours to free; what you pass to one \
         is only borrowed.\n\n"
    )
}

fn manifest(name: &str, owner: &str) -> String {
    format!(
        "# The artifact's manifest: who owns it, what a call costs, who pays the resources.\n\
         owner = \"{owner}\"              # your agent's id: it receives the price\n\
         name = \"{name}\"\n\
         version = \"0.1.0\"              # a version is immutable once uploaded: raise it for the next upload\n\
         price = 1                      # scrip per successful call, caller -> owner\n\
         resource_policy = \"caller_pays\" # or \"owner_pays\"\n\
         [limits]\n\
         fuel = 100_000_000\n"
    )
}

fn rust_manifest(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\n\
         crate-type = [\"cdylib\"]\n\n[dependencies]\nfuelhost-guest = {{ path = \"fuelhost-guest\" }}\n\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\npanic = \"abort\"\n\
         strip = \"debuginfo\"\n\n# A project of its own, not a member of an enclosing workspace.\n[workspace]\n"
    )
}

fn rust_source(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Artifact => format!(
            "//! {name}: a fuelhost artifact. Answers `hello, <input>` and logs who called.\n\n\
             use fuelhost_guest::{{ledger, log, Artifact, RunError}};\n\n\
             struct App;\n\n\
             impl Artifact for App {{\n    \
                 fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> {{\n        \
                     if input.is_empty() {{\n            \
                         return Err(RunError::InvalidInput(\"send some text\".into()));\n        \
                     }}\n        \
                     let caller = ledger::context().caller;\n        \
                     log::info(&format!(\"{name} called by {{caller}}\"));\n        \
                     let mut out = b\"hello, \".to_vec();\n        \
                     out.extend_from_slice(&input);\n        \
                     Ok(out)\n    \
                 }}\n\
             }}\n\n\
             fuelhost_guest::export_artifact!(App);\n"
        ),
        Kind::Policy => format!(
            "//! {name}: a fuelhost policy plugin. Denies invocations priced above 100 scrip.\n\n\
             use fuelhost_guest::policy_types::{{Action, Decision}};\n\
             use fuelhost_guest::Policy;\n\n\
             struct App;\n\n\
             impl Policy for App {{\n    \
                 fn check(action: Action) -> Decision {{\n        \
                     if action.kind == \"invoke\" && action.price > 100 {{\n            \
                         return Decision::Deny(format!(\"{name}: {{}} costs {{}} scrip, over 100\", action.target, action.price));\n        \
                     }}\n        \
                     Decision::Allow\n    \
                 }}\n\
             }}\n\n\
             fuelhost_guest::export_policy!(App);\n"
        ),
    }
}

fn python_source(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Artifact => format!(
            "\"\"\"{name}: a fuelhost artifact in Python. Answers `hello, <input>` and logs who called.\"\"\"\n\n\
             import wit_world\n\
             from wit_world.imports import ledger, log\n\
             from wit_world.imports.fuelhost_host_types import RunError_InvalidInput\n\
             from componentize_py_types import Err\n\n\n\
             class WitWorld(wit_world.WitWorld):\n    \
                 def run(self, input: bytes) -> bytes:\n        \
                     if not input:\n            \
                         raise Err(RunError_InvalidInput(\"send some text\"))\n        \
                     log.log(log.Level.INFO, f\"{name} called by {{ledger.context().caller}}\")\n        \
                     return b\"hello, \" + input\n"
        ),
        Kind::Policy => format!(
            "\"\"\"{name}: a fuelhost policy plugin in Python. Denies invocations priced above 100 scrip.\"\"\"\n\n\
             from wit_world import exports\n\
             from wit_world.imports.types import Action, Decision, Decision_Allow, Decision_Deny\n\n\n\
             class Policy(exports.Policy):\n    \
                 def check(self, action: Action) -> Decision:\n        \
                     if action.kind == \"invoke\" and action.price > 100:\n            \
                         return Decision_Deny(f\"{name}: {{action.target}} costs {{action.price}} scrip, over 100\")\n        \
                     return Decision_Allow()\n"
        ),
    }
}

fn js_source(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Artifact => format!(
            "// {name}: a fuelhost artifact in JavaScript. Answers `hello, <input>`.\n\
             // The input arrives as a Uint8Array; return one.\n\n\
             export function run(input) {{\n  \
                 if (input.length === 0) {{\n    \
                     // Thrown, a `run-error` case: the call ends `run_error`.\n    \
                     throw {{ tag: \"invalid-input\", val: \"send some text\" }};\n  \
                 }}\n  \
                 const text = new TextDecoder().decode(input);\n  \
                 return new TextEncoder().encode(`hello, ${{text}}`);\n\
             }}\n"
        ),
        Kind::Policy => format!(
            "// {name}: a fuelhost policy plugin in JavaScript. Denies invocations\n\
             // priced above 100 scrip. Prices are u64, so they arrive as BigInt.\n\n\
             export const policy = {{\n  \
                 check(action) {{\n    \
                     if (action.kind === \"invoke\" && action.price > 100n) {{\n      \
                         return {{ tag: \"deny\", val: `{name}: ${{action.target}} costs ${{action.price}} scrip, over 100` }};\n    \
                     }}\n    \
                     return {{ tag: \"allow\" }};\n  \
                 }},\n\
             }};\n"
        ),
    }
}

fn ts_source(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Artifact => format!(
            "// {name}: a fuelhost artifact in TypeScript. Answers `hello, <input>`.\n\
             // `fuelhost build` strips the types and builds it as JavaScript.\n\n\
             export function run(input: Uint8Array): Uint8Array {{\n  \
                 if (input.length === 0) {{\n    \
                     // Thrown, a `run-error` case: the call ends `run_error`.\n    \
                     throw {{ tag: \"invalid-input\", val: \"send some text\" }};\n  \
                 }}\n  \
                 const text: string = new TextDecoder().decode(input);\n  \
                 return new TextEncoder().encode(`hello, ${{text}}`);\n\
             }}\n"
        ),
        Kind::Policy => format!(
            "// {name}: a fuelhost policy plugin in TypeScript. Denies invocations\n\
             // priced above 100 scrip. Prices are u64, so they arrive as bigint.\n\n\
             interface Action {{\n  kind: string;\n  subject: string;\n  target: string;\n  price: bigint;\n}}\n\n\
             type Decision = {{ tag: \"allow\" }} | {{ tag: \"deny\"; val: string }};\n\n\
             export const policy = {{\n  \
                 check(action: Action): Decision {{\n    \
                     if (action.kind === \"invoke\" && action.price > 100n) {{\n      \
                         return {{ tag: \"deny\", val: `{name}: ${{action.target}} costs ${{action.price}} scrip, over 100` }};\n    \
                     }}\n    \
                     return {{ tag: \"allow\" }};\n  \
                 }},\n\
             }};\n"
        ),
    }
}

/// The C templates, for the bindings `wit-bindgen c` generates: they free
/// their arguments and allocate what they return, as the canonical ABI and
/// the generated post-return functions expect.
fn c_source(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Artifact => format!(
            "// {name}: a fuelhost artifact in C. Answers `hello, <input>` and logs who called.\n\
             // `fuelhost build` generates artifact.h from wit/ (README.md says who frees what).\n\n\
             #include <stdio.h>\n\
             #include <stdlib.h>\n\
             #include <string.h>\n\n\
             #include \"artifact.h\"\n\n\
             bool exports_artifact_run(artifact_list_u8_t *input, artifact_list_u8_t *ret, artifact_run_error_t *err) {{\n  \
                 if (input->len == 0) {{\n    \
                     // A `run-error` case: the call ends `run_error`. The string is freed\n    \
                     // after the call, so it is a copy, not the literal.\n    \
                     err->tag = FUELHOST_HOST_TYPES_RUN_ERROR_INVALID_INPUT;\n    \
                     artifact_string_dup(&err->val.invalid_input, \"send some text\");\n    \
                     artifact_list_u8_free(input);\n    \
                     return false;\n  \
                 }}\n\n  \
                 // The context the host returns is ours to free; the line logged is only lent.\n  \
                 fuelhost_host_ledger_call_context_t context;\n  \
                 fuelhost_host_ledger_context(&context);\n  \
                 char line[256];\n  \
                 snprintf(line, sizeof line, \"{name} called by %.*s\", (int)context.caller.len,\n           \
                          (const char *)context.caller.ptr);\n  \
                 artifact_string_t message;\n  \
                 artifact_string_set(&message, line);\n  \
                 fuelhost_host_log_log(FUELHOST_HOST_LOG_LEVEL_INFO, &message);\n  \
                 fuelhost_host_ledger_call_context_free(&context);\n\n  \
                 // The output is freed after the call: allocated here.\n  \
                 static const char hello[] = \"hello, \";\n  \
                 size_t prefix = sizeof hello - 1;\n  \
                 ret->len = prefix + input->len;\n  \
                 ret->ptr = malloc(ret->len);\n  \
                 if (ret->ptr == NULL) {{\n    \
                     abort();\n  \
                 }}\n  \
                 memcpy(ret->ptr, hello, prefix);\n  \
                 memcpy(ret->ptr + prefix, input->ptr, input->len);\n  \
                 artifact_list_u8_free(input);\n  \
                 return true;\n\
             }}\n"
        ),
        Kind::Policy => format!(
            "// {name}: a fuelhost policy plugin in C. Denies invocations priced above 100 scrip.\n\
             // `fuelhost build` generates policy_plugin.h from wit/ (README.md says who frees what).\n\n\
             #include <inttypes.h>\n\
             #include <stdio.h>\n\
             #include <string.h>\n\n\
             #include \"policy_plugin.h\"\n\n\
             static bool is(const policy_plugin_string_t *s, const char *text) {{\n  \
                 size_t n = strlen(text);\n  \
                 return s->len == n && memcmp(s->ptr, text, n) == 0;\n\
             }}\n\n\
             void exports_fuelhost_host_policy_check(exports_fuelhost_host_policy_action_t *action,\n                                        \
                                                     exports_fuelhost_host_policy_decision_t *ret) {{\n  \
                 if (is(&action->kind, \"invoke\") && action->price > 100) {{\n    \
                     char reason[1024];  // a longer reason is cut short\n    \
                     snprintf(reason, sizeof reason, \"{name}: %.*s costs %\" PRIu64 \" scrip, over 100\",\n             \
                              (int)action->target.len, (const char *)action->target.ptr, action->price);\n    \
                     // Freed after the call: a copy, not the buffer on the stack.\n    \
                     ret->tag = FUELHOST_HOST_TYPES_DECISION_DENY;\n    \
                     policy_plugin_string_dup(&ret->val.deny, reason);\n  \
                 }} else {{\n    \
                     ret->tag = FUELHOST_HOST_TYPES_DECISION_ALLOW;\n  \
                 }}\n  \
                 // The action is ours to free.\n  \
                 exports_fuelhost_host_policy_action_free(action);\n\
             }}\n"
        ),
    }
}

/// A tool: where `scripts/setup.sh` puts it (`installed`), else the
/// project's own `node_modules/.bin`, else `PATH`.
fn find_tool(name: &str, installed: Option<PathBuf>, dir: &Path) -> Option<PathBuf> {
    installed
        .into_iter()
        .chain([dir.join("node_modules/.bin").join(name)])
        .chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths).map(|p| p.join(name)))
        .find(|p| p.is_file())
}

/// A tool `fuelhost build` needs, or what to do to have it.
fn tool(name: &str, installed: &str, dir: &Path, install: &str) -> Result<PathBuf> {
    let cached = crate::cache_dir().map(|c| c.join(installed));
    find_tool(name, cached.clone(), dir).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} is not installed (looked in {}, node_modules/.bin and PATH): run scripts/setup.sh from the \
             fuelhost repository, or {install}",
            cached.map_or_else(|| "~/.cache/fuelhost".into(), |c| c.display().to_string())
        )
    })
}

/// The WIT folder a project builds against: its own `wit/`, else the
/// nearest one above it (a folder of the fuelhost repository); for a
/// world of `fuelhost:host@0.2.0`, `wit-0.2.0/` (0.2.0's `llm`, the rest
/// 0.1.0's) in the same way.
fn wit_dir(dir: &Path) -> Result<PathBuf> {
    let world = std::fs::read_to_string(dir.join("world")).unwrap_or_default();
    let (folder, marker) = match world.trim().ends_with("@0.2.0") {
        true => ("wit-0.2.0", "llm.wit"),
        false => ("wit", "worlds.wit"),
    };
    let dir = dir.canonicalize().with_context(|| format!("reading {}", dir.display()))?;
    dir.ancestors().map(|d| d.join(folder)).find(|w| w.join(marker).is_file()).ok_or_else(|| {
        Usage(format!("{} has no {folder}/ folder (with {marker}) in it or above it", dir.display())).into()
    })
}

/// Run `cmd`, failing with its output when it fails.
fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `fuelhost build [DIR]`: the folder's component, built; returns its path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(Usage(format!(
            "{} is not a folder: give a project folder (fuelhost new makes one)",
            dir.display()
        ))
        .into());
    }
    let dir = dir.canonicalize()?;
    let name = dir.file_name().and_then(|n| n.to_str()).context("the folder has no name")?.to_string();
    let world =
        std::fs::read_to_string(dir.join("world")).map_or_else(|_| "artifact".to_string(), |w| w.trim().to_string());
    let out = dir.join(format!("{name}.wasm"));
    let has = |f: &str| dir.join(f).is_file();
    if has("Cargo.toml") {
        eprintln!("building {} (Rust)", dir.display());
        build_rust(&dir, &out)?;
    } else if has("app.py") {
        let cpy = tool("componentize-py", "venv/bin/componentize-py", &dir, "`pip install componentize-py==0.25`")?;
        eprintln!("building {} (componentize-py)", dir.display());
        let mut cmd = Command::new(&cpy);
        cmd.current_dir(&dir)
            .arg("-d")
            .arg(wit_dir(&dir)?)
            .args(["-w", &world, "componentize", "-p", ".", "app", "-o"])
            .arg(&out);
        run(cmd, "componentize-py")?;
    } else if has("app.js") || has("app.ts") {
        // TypeScript: its types stripped by rolldown (which componentize-js
        // brings along), then built as JavaScript.
        // The TypeScript's JavaScript lives in `_scratch` until the build
        // is done.
        let (source, _scratch) = if has("app.js") {
            (dir.join("app.js"), None)
        } else {
            let rolldown = tool(
                "rolldown",
                "js/node_modules/.bin/rolldown",
                &dir,
                "`npm install @bytecodealliance/componentize-js@0.23` in the project (it brings rolldown)",
            )?;
            let scratch = tempfile_dir(&dir)?;
            let js = scratch.join("app.js");
            let mut cmd = Command::new(&rolldown);
            cmd.current_dir(&dir).args(["app.ts", "-f", "esm", "-p", "neutral", "-o"]).arg(&js);
            run(cmd, "rolldown (TypeScript to JavaScript)")?;
            (js, Some(scratch))
        };
        let cjs = tool(
            "componentize-js",
            "js/node_modules/.bin/componentize-js",
            &dir,
            "`npm install @bytecodealliance/componentize-js@0.23` in the project",
        )?;
        eprintln!("building {} (componentize-js)", dir.display());
        let wit = wit_dir(&dir)?;
        let mut cmd = Command::new(&cjs);
        cmd.arg(&source).arg("-w").arg(&wit).args(["-n", &world]);
        // A world of fuelhost's own is kept from importing `wasi:http`; a
        // `wasi:http/proxy` world answers StarlingMonkey's fetch event.
        let serves_http = std::fs::read_to_string(wit.join("worlds.wit")).is_ok_and(|w| w.contains("wasi:http/proxy"));
        if !serves_http {
            cmd.args(["-d", "http", "fetch-event"]);
        }
        cmd.arg("-o").arg(&out);
        run(cmd, "componentize-js")?;
    } else if has("plugin.wat") {
        let tools = tool("wasm-tools", "venv/bin/wasm-tools", &dir, "`cargo install wasm-tools`")?;
        let core = dir.join(format!("{name}.core.wasm"));
        let mut embed = Command::new(&tools);
        embed
            .args(["component", "embed"])
            .arg(wit_dir(&dir)?)
            .args(["--world", &world])
            .arg(dir.join("plugin.wat"))
            .arg("-o")
            .arg(&core);
        run(embed, "wasm-tools component embed")?;
        let mut new = Command::new(&tools);
        new.args(["component", "new"]).arg(&core).arg("-o").arg(&out);
        run(new, "wasm-tools component new")?;
        let _ = std::fs::remove_file(core);
    } else if std::fs::read_dir(&dir)?.flatten().any(|e| e.path().extension().is_some_and(|x| x == "c")) {
        if world == "command" {
            build_c_command(&dir, &out)?;
        } else {
            build_c(&dir, &world, &out)?;
        }
    } else {
        return Err(Usage(format!(
            "{} holds no project fuelhost knows: Cargo.toml (Rust), app.py (Python), app.js (JavaScript), \
             app.ts (TypeScript), C sources or plugin.wat; `fuelhost new` makes one",
            dir.display()
        ))
        .into());
    }
    Ok(out)
}

/// A C project: bindings from `wit-bindgen c`, compiled with clang
/// against wasi-libc as a reactor, made a component with the WASI
/// preview-1 adapter (the one wasmtime 48 ships).
fn build_c(dir: &Path, world: &str, out: &Path) -> Result<()> {
    let wbg = tool("wit-bindgen", "tools/bin/wit-bindgen", dir, "`cargo install wit-bindgen-cli@0.63`")?;
    let (clang, adapt) = c_tools(dir, "reactor")?;
    eprintln!("building {} (wit-bindgen c + clang)", dir.display());
    let scratch = tempfile_dir(dir)?;
    let mut bind = Command::new(&wbg);
    bind.arg("c").arg(wit_dir(dir)?).args(["--world", world, "--out-dir"]).arg(&scratch);
    run(bind, "wit-bindgen c")?;
    let sources = |d: &Path, ext: &str| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == ext)
                    || (ext == "o" && p.to_string_lossy().ends_with("_component_type.o"))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let core = scratch.join("core.wasm");
    let mut cc = Command::new(clang);
    cc.args(["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-mexec-model=reactor", "-I"])
        .arg(&scratch)
        .args(sources(dir, "c")?)
        .args(sources(&scratch, "c")?)
        .args(sources(&scratch, "o")?)
        .arg("-o")
        .arg(&core);
    run(cc, "clang")?;
    adapt(&core, out)?;
    Ok(())
}

/// A C program with a `main` (its `world` file says `command`): compiled
/// with clang against wasi-libc, nothing generated, made a
/// `wasi:cli/command` component with the WASI preview-1 command adapter.
fn build_c_command(dir: &Path, out: &Path) -> Result<()> {
    let (clang, adapt) = c_tools(dir, "command")?;
    eprintln!("building {} (clang, a wasi:cli/command)", dir.display());
    let scratch = tempfile_dir(dir)?;
    let core = scratch.join("core.wasm");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    let mut cc = Command::new(clang);
    cc.args(["--target=wasm32-wasi", "--sysroot=/usr", "-O2"]).args(&sources).arg("-o").arg(&core);
    run(cc, "clang")?;
    adapt(&core, out)?;
    Ok(())
}

/// What a C build runs: clang, and a step making a core module a
/// component with the WASI preview-1 adapter of `kind` (`reactor` or
/// `command`).
fn c_tools(dir: &Path, kind: &str) -> Result<(PathBuf, impl Fn(&Path, &Path) -> Result<()>)> {
    let tools = tool("wasm-tools", "venv/bin/wasm-tools", dir, "`cargo install wasm-tools`")?;
    let clang = find_tool("clang", None, dir)
        .context("clang is not installed: `apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`")?;
    let adapter = preview1_adapter(kind).context(
        "the WASI preview-1 adapter is missing: run scripts/setup.sh from the fuelhost repository (cargo fetches \
         wasi-preview1-component-adapter-provider 48 into ~/.cargo/registry)",
    )?;
    let adapt = move |core: &Path, out: &Path| {
        let mut new = Command::new(&tools);
        new.args(["component", "new"])
            .arg(core)
            .arg("--adapt")
            .arg(format!("wasi_snapshot_preview1={}", adapter.display()))
            .arg("-o")
            .arg(out);
        run(new, "wasm-tools component new")
    };
    Ok((clang, adapt))
}

/// A scratch folder for a build's intermediate files, removed when the
/// build is done with it (whether it succeeded or not).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh [`Scratch`] folder for building the project in `dir`.
fn tempfile_dir(dir: &Path) -> Result<Scratch> {
    let scratch = std::env::temp_dir().join(format!(
        "fuelhost-build-{}-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("project"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    Ok(Scratch(scratch))
}

/// The WASI preview-1 adapter of wasmtime 48 of `kind` (`reactor` or
/// `command`): the copy the setup keeps with the tools, else the newest
/// 48.x in cargo's registry.
fn preview1_adapter(kind: &str) -> Option<PathBuf> {
    let file = format!("wasi_snapshot_preview1.{kind}.wasm");
    // The setup keeps a copy with the other tools.
    let kept = crate::cache_dir().map(|c| c.join("tools").join(&file));
    if let Some(kept) = kept.filter(|k| k.is_file()) {
        return Some(kept);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .flatten()
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("wasi-preview1-component-adapter-provider-48."))
        .map(|e| e.path().join("artefacts").join(&file))
        .filter(|p| p.is_file())
        .collect();
    // By version, as numbers: 48.0.10 after 48.0.9.
    found.sort_by_key(|p| {
        let crate_dir = p.ancestors().nth(2).and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
        let version = crate_dir.as_deref().and_then(|n| n.rsplit('-').next()).unwrap_or("").to_string();
        version.split('.').map(|n| n.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>()
    });
    found.pop()
}

/// A Rust project, for wasm32-wasip2: rustup's target when installed, else
/// Debian's rustc with the standard library rebuilt (into a target folder
/// shared by every project, so it is built once).
fn build_rust(dir: &Path, out: &Path) -> Result<()> {
    let target_dir = crate::cache_dir().unwrap_or_else(|| dir.join("target")).join("guest-target");
    let rustup_target = Command::new("rustup")
        .current_dir(dir)
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"));
    let mut cmd;
    if rustup_target {
        cmd = Command::new("cargo");
        cmd.args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"]);
    } else if Path::new("/usr/bin/cargo").is_file() && Path::new("/usr/lib/rustlib/src/rust/library").is_dir() {
        if !target_dir.join("wasm32-wasip2").is_dir() {
            eprintln!("(the first Rust build compiles the standard library for wasm32-wasip2 once: minutes)");
        }
        cmd = Command::new("/usr/bin/cargo");
        cmd.env("RUSTC", "/usr/bin/rustc")
            .env("RUSTDOC", "/usr/bin/rustdoc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-L/usr/lib/wasm32-wasi")
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2", "-Zbuild-std=std,panic_abort"]);
    } else {
        bail!(
            "no Rust toolchain for wasm32-wasip2: `rustup target add wasm32-wasip2`, or on Debian run \
             scripts/setup.sh from the fuelhost repository (it installs rustc-web, rust-web-src and wasi-libc)"
        );
    }
    cmd.current_dir(dir).arg("--manifest-path").arg(dir.join("Cargo.toml")).arg("--target-dir").arg(&target_dir);
    run(cmd, "cargo build")?;
    let built = target_dir.join(format!("wasm32-wasip2/release/{}.wasm", library_name(&dir.join("Cargo.toml"))?));
    std::fs::copy(&built, out).with_context(|| format!("copying {}", built.display()))?;
    Ok(())
}

/// The file name cargo gives the library of the package at `manifest`:
/// `[lib] name`, else the package's name with `-` as `_`.
fn library_name(manifest: &Path) -> Result<String> {
    let text = std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let doc: toml::Value = toml::from_str(&text).with_context(|| format!("{} is not TOML", manifest.display()))?;
    let name = doc
        .get("lib")
        .and_then(|l| l.get("name"))
        .or_else(|| doc.get("package").and_then(|p| p.get("name")))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{} names no package", manifest.display()))?;
    Ok(name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `wit/`, `wit-0.2.0/` (through its links into `wit/`,
    /// but not the links' own `deps/`, which WIT does not read) and
    /// `guest-sdk/` is vendored into projects: one added there and not
    /// here would leave new projects behind.
    #[test]
    fn the_vendored_files_are_every_file_of_the_contract_and_the_sdk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut found = Vec::new();
        for top in ["wit", "wit-0.2.0", "guest-sdk"] {
            let mut stack = vec![root.join(top)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        let nested_deps = p.ends_with("deps") && d.parent().is_some_and(|up| up.ends_with("deps"));
                        if p.file_name().is_some_and(|n| n != "target") && !nested_deps {
                            stack.push(p);
                        }
                    } else if p.extension().is_some_and(|x| x == "wit" || x == "rs" || x == "toml") {
                        found.push(
                            p.strip_prefix(&root).unwrap().to_string_lossy().replace("guest-sdk/", "fuelhost-guest/"),
                        );
                    }
                }
            }
        }
        found.sort();
        let mut vendored: Vec<String> = WIT.iter().chain(GUEST_SDK.iter()).map(|(p, _)| p.to_string()).collect();
        vendored.sort();
        assert_eq!(found, vendored);
    }

    #[test]
    fn the_library_file_is_named_as_cargo_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Cargo.toml");
        std::fs::write(&path, "[lib]\ncrate-type = [\"cdylib\"]\n[package]\nname = 'my-app'  # a comment\n").unwrap();
        assert_eq!(library_name(&path).unwrap(), "my_app");
        std::fs::write(&path, "[package]\nname = \"my-app\"\n[lib]\nname = \"other\"\n").unwrap();
        assert_eq!(library_name(&path).unwrap(), "other");
    }

    /// A C project is `app.c` next to the world file `build_c` reads, with
    /// nothing of Rust's; its README says what to edit and what frees what.
    #[test]
    fn a_c_project_is_one_source_file_and_a_readme_that_says_how_it_builds() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, world, header) in
            [(Kind::Artifact, "artifact", "artifact.h"), (Kind::Policy, "policy-plugin", "policy_plugin.h")]
        {
            let project = dir.path().join(format!("my-{world}"));
            new(&project, kind, Lang::C, "alice").unwrap();
            let read = |f: &str| std::fs::read_to_string(project.join(f)).unwrap();
            assert_eq!(read("world"), format!("{world}\n"));
            let source = read("app.c");
            assert!(source.contains(&format!("#include \"{header}\"")), "{source}");
            assert!(source.contains(&format!("my-{world}")), "{source}");
            let readme = read("README.md");
            assert!(
                readme.contains("Written in C: edit `app.c`") && readme.contains(&format!("`{header}`")),
                "{readme}"
            );
            assert!(!project.join("Cargo.toml").exists() && !project.join("fuelhost-guest").exists());
            assert_eq!(project.join("manifest.toml").exists(), kind == Kind::Artifact);
        }
    }

    #[test]
    fn names_cargo_or_the_registry_would_refuse_are_refused_first() {
        let dir = tempfile::tempdir().unwrap();
        let e = new(&dir.path().join("2fa"), Kind::Artifact, Lang::Rust, "alice").unwrap_err().to_string();
        assert!(e.contains("starts with a digit"), "{e}");
        let e = new(&dir.path().join("Hello"), Kind::Artifact, Lang::Python, "alice").unwrap_err().to_string();
        assert!(e.contains("cannot name an artifact"), "{e}");
        let e = new(&dir.path().join("ok"), Kind::Artifact, Lang::Python, "a\"b").unwrap_err().to_string();
        assert!(e.contains("is not an agent id"), "{e}");
    }
}
