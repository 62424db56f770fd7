//! `porthole-collector`, the sidecar that tails files and forwards OTLP with a disk buffer.
//! It is not built yet (issue 5); until then this binary says so and fails, rather than
//! pretending to ship anything.

fn main() -> std::process::ExitCode {
    eprintln!(
        "porthole-collector is not implemented yet (issue 5); point OTLP SDKs at `porthole serve` directly"
    );
    std::process::ExitCode::FAILURE
}
