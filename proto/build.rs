//! Compiles Porthole's own services with protox (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "porthole/tail/v1/tail.proto",
        "porthole/control/v1/control.proto",
    ];
    println!("cargo:rerun-if-changed=porthole");
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
