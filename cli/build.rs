//! Embeds the web UI (web/) in the binary. When web/package.json exists, the UI is built
//! with npm into OUT_DIR (`npm ci` first when web/node_modules is missing or older than
//! package-lock.json, then `npm run build -- --outDir …`), and every file of the result
//! is included; PORTHOLE_WEB_DIST=<dir> embeds an already-built directory instead. A build
//! failure stops the Rust build with npm's output: a binary without its UI would look
//! broken only once someone opened it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // The binary holds ~300k relative relocations (DataFusion's and arrow's vtables); as
    // RELA entries the loader reads 7.6 MB of them at every start, which made a `porthole
    // logs` call 7 ms before its first line of code. Packed (DT_RELR, glibc 2.36+, binutils
    // 2.38+) they are 90 KB and a start is ~4 ms, still position-independent (ASLR kept).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../web");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=PORTHOLE_WEB_DIST");
    // Only paths that exist (cargo reruns the script every build for one that does not);
    // with no app yet, the directory itself, to notice it appear.
    let watched = [
        "package.json",
        "package-lock.json",
        "index.html",
        "vite.config.ts",
        "tsconfig.json",
        "src",
        "public",
    ];
    if web.join("package.json").exists() {
        for name in watched.iter().filter(|name| web.join(name).exists()) {
            println!("cargo:rerun-if-changed={}", web.join(name).display());
        }
    } else {
        println!("cargo:rerun-if-changed={}", web.display());
    }
    let dist = if let Ok(dir) = std::env::var("PORTHOLE_WEB_DIST") {
        Some(PathBuf::from(dir))
    } else if web.join("package.json").exists() {
        Some(build_ui(&web, &out.join("web-dist")))
    } else {
        None
    };
    let mut files = Vec::new();
    if let Some(dist) = &dist {
        collect(dist, dist, &mut files);
        assert!(
            files.iter().any(|(name, _)| name == "index.html"),
            "{}: no index.html in the built web UI",
            dist.display()
        );
    }
    files.sort();
    let mut code = String::from(
        "/// The built web UI: (path under the root, bytes).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("web_assets.rs"), code).unwrap();
}

fn build_ui(web: &Path, dist: &Path) -> PathBuf {
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_none() || modified(&installed) < modified(&lock) {
        run(web, &["ci", "--no-audit", "--no-fund"]);
    }
    let out = dist.display().to_string();
    run(
        web,
        &["run", "build", "--", "--outDir", &out, "--emptyOutDir"],
    );
    dist.to_path_buf()
}

fn run(web: &Path, args: &[&str]) {
    let output = Command::new("npm")
        .args(args)
        .current_dir(web)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the web UI needs Node.js 20 and npm to build (`npm {}` in {}): {e}; \
                 or set PORTHOLE_WEB_DIST to an already-built web/dist",
                args.join(" "),
                web.display()
            )
        });
    assert!(
        output.status.success(),
        "`npm {}` in {} failed:\n{}\n{}",
        args.join(" "),
        web.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((name, path.canonicalize().unwrap()));
        }
    }
}
