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
    // The version of that libjpeg-turbo, for `frameflow --version`.
    let version = includes
        .split(',')
        .filter_map(|d| std::fs::read_to_string(std::path::Path::new(d).join("jconfig.h")).ok())
        .find_map(|h| {
            h.lines().find_map(|l| {
                l.strip_prefix("#define LIBJPEG_TURBO_VERSION ")
                    .map(|v| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FRAMEFLOW_LIBJPEG_TURBO_VERSION={version}");
}
