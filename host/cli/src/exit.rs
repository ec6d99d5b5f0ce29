//! What the command's exit code says, for scripts: one code per kind of
//! outcome, the same for every command, and how an error is printed (a
//! line on stderr, or with `--json` the API's error shape on stdout).

use serde_json::json;

use crate::client::Failure;

/// The exit codes. `docs/api.md` lists them too ("The command line").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// It worked (an invocation: it ran and succeeded).
    Ok = 0,
    /// Anything not below: a server error, a file that cannot be read.
    Error = 1,
    /// The request was malformed (also a command line clap refused).
    BadInput = 2,
    /// The policy chain or the key's rights refused it.
    Denied = 3,
    /// Not enough scrip or budget; nothing was charged.
    Insufficient = 4,
    /// The invocation ran and did not succeed: out of fuel, a limit, a
    /// trap, a timeout, the guest's own error.
    RunFailed = 5,
    /// No server answered at the URL.
    Unreachable = 6,
    /// No key, or a key the server does not know.
    Unauthorized = 7,
    /// No such artifact, agent, task, ...
    NotFound = 8,
    /// The id is taken by something else, or the state forbids it.
    Conflict = 9,
    /// Rate limited, or the host is busy: try again later.
    Busy = 10,
    /// Parked: the action waits for an approval.
    Parked = 11,
}

impl Exit {
    /// The code for an error answer of `status`.
    pub fn of_status(status: u16) -> Exit {
        match status {
            400 | 405 | 411 | 413 | 415 | 422 => Exit::BadInput,
            401 => Exit::Unauthorized,
            402 => Exit::Insufficient,
            403 => Exit::Denied,
            404 => Exit::NotFound,
            409 | 410 => Exit::Conflict,
            429 | 503 => Exit::Busy,
            _ => Exit::Error,
        }
    }

    /// The code for `e`: the server's answer when it was one.
    pub fn of_error(e: &anyhow::Error) -> Exit {
        if e.downcast_ref::<Usage>().is_some() {
            return Exit::BadInput;
        }
        match e.downcast_ref::<Failure>() {
            Some(Failure { status: Some(s), .. }) => Exit::of_status(*s),
            Some(Failure { status: None, .. }) => Exit::Unreachable,
            None => Exit::Error,
        }
    }

    /// As the process's exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A command line that parses but asks for something that makes no sense
/// (exit [`Exit::BadInput`], as clap's own refusals).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `e` as the user sees it: `error: ...` on stderr, or with `--json` the
/// API's error shape, with the exit code, on stdout.
pub fn print_error(e: &anyhow::Error, json: bool) {
    if !json {
        eprintln!("error: {e:#}");
        return;
    }
    let exit = Exit::of_error(e);
    let body = match e.downcast_ref::<Failure>() {
        Some(f) => {
            json!({"error": {"code": f.code, "message": f.message, "status": f.status, "exit_code": exit.code()}})
        }
        None => json!({"error": {"code": "client_error", "message": format!("{e:#}"), "status": null,
                                 "exit_code": exit.code()}}),
    };
    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: Option<u16>, code: &str) -> anyhow::Error {
        Failure { status, code: code.into(), message: "m".into(), hint: String::new() }.into()
    }

    #[test]
    fn each_kind_of_refusal_has_its_code() {
        let cases = [
            (Some(400), Exit::BadInput),
            (Some(401), Exit::Unauthorized),
            (Some(402), Exit::Insufficient),
            (Some(403), Exit::Denied),
            (Some(404), Exit::NotFound),
            (Some(409), Exit::Conflict),
            (Some(429), Exit::Busy),
            (Some(503), Exit::Busy),
            (Some(500), Exit::Error),
            (None, Exit::Unreachable),
        ];
        for (status, exit) in cases {
            assert_eq!(Exit::of_error(&failure(status, "x")), exit, "{status:?}");
        }
        assert_eq!(Exit::of_error(&anyhow::anyhow!("reading a file")), Exit::Error);
        // Context added on the way up does not hide the answer.
        let wrapped = failure(Some(402), "insufficient_scrip").context("invoking");
        assert_eq!(Exit::of_error(&wrapped), Exit::Insufficient);
    }
}
