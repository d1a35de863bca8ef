//! `app-manifest print` writes the Kustomer app definition for an edge URL; `app-manifest check
//! [FILE]` checks a definition against the platform's rules before it is registered.
//!
//! Exit codes: 0 done, 1 a check failed (or the file is unreadable or not JSON), 2 bad usage.

use std::io::Write;
use std::process::ExitCode;
use stella_connect::manifest::{check, definition, render, DEFAULT_EDGE_URL};
use stella_connect::settings::is_loopback;
use url::Url;

const USAGE: &str = "usage: app-manifest print [--edge-url URL]   (or EDGE_URL; default DEFAULT)
       app-manifest check [FILE]            (default app-manifest/stella_connect.json)";
const DEFAULT_FILE: &str = "app-manifest/stella_connect.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["print"] => print(std::env::var("EDGE_URL").ok().filter(|u| !u.is_empty())),
        ["print", "--edge-url", url] => print(Some((*url).to_owned())),
        ["check"] => check_file(DEFAULT_FILE),
        ["check", file] => check_file(file),
        _ => {
            eprintln!("{}", USAGE.replace("DEFAULT", DEFAULT_EDGE_URL));
            ExitCode::from(2)
        }
    }
}

/// Prints the definition; the edge URL must be absolute https (http only on loopback).
fn print(edge_url: Option<String>) -> ExitCode {
    let edge_url = edge_url.unwrap_or_else(|| DEFAULT_EDGE_URL.to_owned());
    match edge_base(&edge_url) {
        Ok(base) => out(&render(&definition(&base))),
        Err(why) => {
            eprintln!("error: edge URL {edge_url:?} {why}");
            ExitCode::from(2)
        }
    }
}

/// The edge's base URL without a trailing slash, or why it cannot be one.
fn edge_base(s: &str) -> Result<String, &'static str> {
    let url = Url::parse(s).map_err(|_| "is not an absolute URL")?;
    if url.host().is_none() {
        return Err("has no host");
    }
    let loopback = is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must start with https:// (http:// only on loopback)"),
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("must not carry credentials, a query or a fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn check_file(path: &str) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let def: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {path} is not valid JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    let violations = check(&def);
    if violations.is_empty() {
        let field = |k: &str| {
            def.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        return out(&format!("ok: {} {}\n", field("app"), field("version")));
    }
    let report: String = violations
        .iter()
        .map(|v| format!("{} at {}: {}\n", v.rule, v.path, v.message))
        .collect();
    out(&report);
    ExitCode::FAILURE
}

/// Writes to stdout; a closed pipe is an error exit, not a panic.
fn out(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
