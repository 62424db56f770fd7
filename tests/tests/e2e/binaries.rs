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
    let taken = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    // `binary` with `args`, the taken address for `flag` and a free one for the other
    // `ports`: it must fail saying `message`.
    let refused =
        |binary_name: &str, args: &[String], ports: &[&str], flag: &str, message: &str| {
            let mut args = args.to_vec();
            for port in ports {
                let addr = if port == &flag {
                    taken.as_str()
                } else {
                    "127.0.0.1:0"
                };
                args.extend([port.to_string(), addr.to_string()]);
            }
            let out = Command::new(binary(binary_name))
                .args(&args)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{binary_name} {flag}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let want = format!("{message} {taken}: Address already in use");
            assert!(stderr.contains(&want), "{binary_name} {flag}: {stderr}");
        };
    let serve = ["serve".to_string(), "--data-dir".into(), path("data")];
    let ports = ["--otlp-grpc-addr", "--otlp-http-addr", "--http-addr"];
    for flag in ports {
        refused("porthole", &serve, &ports, flag, &format!("binding {flag}"));
    }
    let collector = [
        "--endpoint".to_string(),
        "http://127.0.0.1:9".into(),
        "--buffer-dir".into(),
        path("buffer"),
        "--otlp-grpc-addr".into(),
        "off".into(),
    ];
    let ports = ["--otlp-http-addr", "--http-addr"];
    for (flag, setting) in [
        ("--otlp-http-addr", "otlp.http_addr"),
        ("--http-addr", "http_addr"),
    ] {
        refused("porthole-collector", &collector, &ports, flag, setting);
    }
}
