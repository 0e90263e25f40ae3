//! Builds the dashboard (`web/`, TypeScript + Vite) and lists its files for
//! `src/assets.rs`, which embeds them with `include_bytes!`.
//!
//! `npm ci` runs when `web/node_modules` is missing or older than
//! `package-lock.json`; `npm run build` runs when `web/dist` is missing or
//! older than any source of the dashboard. A fresh clone therefore needs
//! only Node.js and npm beside the Rust toolchain: `cargo run --release --
//! demo` builds everything. A failing npm fails the build, with npm's output.
//!
//! `PLAYHEAD_SKIP_WEB_BUILD=1` never runs npm: the files already in
//! `web/dist` are embedded, or, without them, a page saying how to build
//! the dashboard.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What `npm run build` reads: a change to any of them rebuilds `web/dist`.
const SOURCES: [&str; 6] = [
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", web.join(s).display());
    }
    // A hand-run `npm run build` writes new hashed names: list them again.
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-env-changed=PLAYHEAD_SKIP_WEB_BUILD");
    let skip =
        std::env::var_os("PLAYHEAD_SKIP_WEB_BUILD").is_some_and(|v| v != "0" && !v.is_empty());

    if !skip {
        if stale(
            &web.join("node_modules/.package-lock.json"),
            &[web.join("package-lock.json")],
        ) {
            npm(&web, &["ci", "--no-audit", "--no-fund"]);
        }
        let sources: Vec<PathBuf> = SOURCES.iter().map(|s| web.join(s)).collect();
        if stale(&dist.join("index.html"), &sources) {
            npm(&web, &["run", "build"]);
        }
    }

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        walk(&dist, &dist, &mut files);
    } else {
        // Only with PLAYHEAD_SKIP_WEB_BUILD and no web/dist.
        let placeholder = out.join("placeholder-index.html");
        std::fs::write(
            &placeholder,
            "<!doctype html><meta charset=utf-8><title>Playhead</title>\
             <p>This binary was built without the dashboard (PLAYHEAD_SKIP_WEB_BUILD). \
             Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, then rebuild.</p>",
        )
        .expect("write the placeholder page");
        files.push(("index.html".to_owned(), placeholder));
    }
    files.sort();
    let mut code = String::from(
        "/// Every file of the built dashboard: (path under `web/dist`, bytes).\n\
         pub(crate) static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        let abs = path.canonicalize().expect("dist file exists");
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            abs.to_str().expect("UTF-8 path")
        )
        .expect("write to a String");
    }
    code.push_str("];\n");
    std::fs::write(out.join("dashboard_files.rs"), code).expect("write the file list");
}

/// Whether `target` is missing or older than any file under `sources`.
fn stale(target: &Path, sources: &[PathBuf]) -> bool {
    let Ok(built) = target.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    sources.iter().any(|s| newest(s).is_some_and(|t| t > built))
}

/// The newest modification time of a file, or of any file under a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest(&e.path()))
        .max()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_str().expect("UTF-8 file name"))
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
}

fn npm(web: &Path, args: &[&str]) {
    let program = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let shown = format!("npm {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .current_dir(web)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "\n\nthe dashboard (web/) is built with Node.js and npm, and `{shown}` could not start: {e}.\n\
                 Install Node.js 20+ with npm, or set PLAYHEAD_SKIP_WEB_BUILD=1 to build without the dashboard.\n"
            )
        });
    if !output.status.success() {
        panic!(
            "\n\n`{shown}` in {} failed ({}):\n{}\n{}\n\
             Fix the dashboard build, or set PLAYHEAD_SKIP_WEB_BUILD=1 to build without it.\n",
            web.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
