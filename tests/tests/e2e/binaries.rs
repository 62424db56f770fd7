//! `porthole` is a small binary: it runs the client commands itself and every other command
//! by executing `porthole-server`, the binary beside it, in its place.

use std::process::Command;

use crate::harness::binary;

#[test]
fn porthole_runs_client_commands_itself_and_the_rest_as_porthole_server() {
    // Beside porthole-server, a server command is porthole-server's: `--help` lists them all.
    let help = Command::new(binary("porthole"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for command in [
        "serve", "ingest", "query", "compact", "demo", "logs", "trace",
    ] {
        assert!(help.contains(command), "{command} missing from\n{help}");
    }

    // Alone, a server command says what is missing; a client command needs nothing else.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("porthole");
    std::fs::copy(binary("porthole"), &alone).unwrap();
    let out = Command::new(&alone)
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("porthole-server is missing"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was started");

    let out = Command::new(&alone)
        .args(["logs", "error", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach http://127.0.0.1:9"),
        "the client command ran: {stderr}"
    );
    let out = Command::new(&alone)
        .args(["logs", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error, as clap's");
}
