//! `frameflow apply` against Pillow itself: every filter step and a few chains, on PNG
//! inputs of awkward sizes in L, RGB and RGBA, compared bit for bit (resize within the
//! contract's ±1), and Pillow's refusals mirrored. The comparison is done by
//! `tests-support/apply/conformance.py` with the pinned Pillow the test command installs.

use std::path::Path;
use std::process::Command;

#[test]
fn apply_matches_pillow_for_every_step() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests-support/apply/conformance.py");
    let work = tempfile::tempdir().expect("temp dir");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let pil = Command::new(&python).args(["-c", "import PIL"]).status();
    assert!(
        pil.is_ok_and(|s| s.success()),
        "{python} cannot import PIL: run `make test` (scripts/install-deps.sh installs the pinned Pillow)"
    );
    let out = Command::new(&python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_frameflow"))
        .arg(work.path())
        .output()
        .expect("running the conformance script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "frameflow apply differs from Pillow:\n{stdout}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn apply_reports_bad_files_and_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.ppm");
    std::fs::write(&good, b"P6\n3 3\n255\n012345678012345678012345678").expect("write");
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").expect("write");
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").expect("write");
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args(["apply", "-f", "emboss", "--format", "png", "-o"])
        .arg(&out)
        .args([&good, &bad, &empty])
        .output()
        .expect("run frameflow");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.png") && stderr.contains("empty.jpg"),
        "{stderr}"
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["good.png".to_string()],
        "only the good file's output, no temp files"
    );
    // A second run refuses to overwrite, a third with --overwrite replaces.
    let again = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args(["apply", "-o"])
        .arg(&out)
        .args(["--format", "png"])
        .arg(&good)
        .output()
        .expect("run frameflow");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    let forced = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .args(["apply", "--overwrite", "--format", "png", "-o"])
        .arg(&out)
        .arg(&good)
        .status()
        .expect("run frameflow");
    assert!(forced.success());
}

#[test]
fn bad_chains_are_usage_errors_naming_the_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (chain, needle) in [
        ("embos", "did you mean 'emboss'"),
        ("gaussian_blur=-1", "radius must be >= 0, got -1"),
        ("emboss,,invert", "step"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_frameflow"))
            .args(["apply", "-f", chain, "-o"])
            .arg(dir.path())
            .arg("x.png")
            .output()
            .expect("run frameflow");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{chain}: {stderr}");
        assert!(stderr.contains(needle), "{chain}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn filters_lists_every_step_with_its_pillow_call() {
    let out = Command::new(env!("CARGO_BIN_EXE_frameflow"))
        .arg("filters")
        .output()
        .expect("run frameflow");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "blur",
        "contour",
        "detail",
        "edge_enhance",
        "edge_enhance_more",
        "emboss",
        "find_edges",
        "sharpen",
        "smooth",
        "smooth_more",
        "gaussian_blur",
        "box_blur",
        "unsharp_mask",
        "median",
        "min",
        "max",
        "mode",
        "kernel",
        "grayscale",
        "invert",
        "resize",
        "crop",
        "rotate",
        "flip",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        text.contains("ImageFilter.EMBOSS") || text.contains("EMBOSS"),
        "{text}"
    );
    assert!(text.contains("GaussianBlur"), "{text}");
}
