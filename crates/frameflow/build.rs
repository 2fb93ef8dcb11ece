//! Compiles `csrc/rowjpeg.c`, the libjpeg shim behind `sink::rowjpeg`, against the headers
//! of the libjpeg-turbo that turbojpeg-sys builds and links (its `cargo:include`, seen here
//! as `DEP_TURBOJPEG_INCLUDE`). The libjpeg symbols the shim calls are in that same
//! static libturbojpeg, which turbojpeg-sys already links.

fn main() {
    println!("cargo:rerun-if-changed=csrc/rowjpeg.c");
    println!("cargo:rerun-if-env-changed=DEP_TURBOJPEG_INCLUDE");
    let includes = std::env::var("DEP_TURBOJPEG_INCLUDE").unwrap_or_default();
    // The shim must see the very headers of the libjpeg-turbo it links against (the
    // struct layouts are part of the ABI): never fall back to another jpeglib.h.
    assert!(
        !includes.is_empty(),
        "turbojpeg-sys gave no include directory (DEP_TURBOJPEG_INCLUDE): cannot build the libjpeg shim"
    );
    let mut build = cc::Build::new();
    build.file("csrc/rowjpeg.c").warnings(true);
    for dir in includes.split(',').filter(|d| !d.is_empty()) {
        build.include(dir);
    }
    build.compile("frameflow_rowjpeg");
}
