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

/// A server or collector whose port is taken stops at once, naming the flag (the
/// collector's setting) and the address.
#[test]
fn a_taken_port_is_named_by_its_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--otlp-grpc-addr", "--otlp-http-addr", "--http-addr"] {
        let mut args = vec!["serve".to_string(), "--data-dir".into()];
        args.push(dir.path().join("data").to_str().unwrap().into());
        for other in ["--otlp-grpc-addr", "--otlp-http-addr", "--http-addr"] {
            args.push(other.into());
            args.push(if other == flag {
                taken_addr.clone()
            } else {
                "127.0.0.1:0".into()
            });
        }
        let out = Command::new(binary("porthole"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "binding {flag} {taken_addr}: Address already in use"
            )),
            "{flag}: {stderr}"
        );
    }
    for (flag, setting) in [
        ("--otlp-http-addr", "otlp.http_addr"),
        ("--http-addr", "http_addr"),
    ] {
        let mut args = vec![
            "--endpoint".to_string(),
            "http://127.0.0.1:9".into(),
            "--buffer-dir".into(),
            dir.path().join("buffer").to_str().unwrap().into(),
            "--otlp-grpc-addr".into(),
            "off".into(),
        ];
        for other in ["--otlp-http-addr", "--http-addr"] {
            args.push(other.into());
            args.push(if other == flag {
                taken_addr.clone()
            } else {
                "127.0.0.1:0".into()
            });
        }
        let out = Command::new(binary("porthole-collector"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{setting} {taken_addr}: Address already in use")),
            "{flag}: {stderr}"
        );
    }
}
