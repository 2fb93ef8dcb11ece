//! Conformance against Pillow itself: `tests-support/pillow/gen_refs.py` makes inputs and
//! Pillow's outputs; every case must match bit for bit (resize: within its tolerance).
//!
//! Needs `python3` with Pillow (`pip install pillow==11.3.0`). Without it this test
//! fails, on purpose: a conformance test that silently passes proves nothing.

use frameflow_filters::{Chain, ImageRef, Mode, Scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mode(name: &str) -> Mode {
    match name {
        "L" => Mode::L,
        "RGB" => Mode::Rgb,
        "RGBA" => Mode::Rgba,
        other => panic!("manifest: unexpected mode {other}"),
    }
}

fn generate() -> PathBuf {
    let probe = Command::new("python3").args(["-c", "import PIL"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import PIL ({}).\nInstall the reference implementation first: \
             python3 -m pip install pillow==11.3.0",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run python3 ({e}).\nInstall Python 3 and then: python3 -m pip install pillow==11.3.0"
        ),
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pillow-refs");
    let _ = std::fs::remove_dir_all(&out);
    let script = workspace_root().join("tests-support/pillow/gen_refs.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("run gen_refs.py");
    assert!(status.success(), "{} failed: {status}", script.display());
    out
}

struct Case<'a> {
    name: &'a str,
    input: &'a str,
    w: u32,
    h: u32,
    mode: Mode,
    chain: &'a str,
    status: &'a str,
    output: &'a str,
    out_w: u32,
    out_h: u32,
    out_mode: &'a str,
    tolerance: u8,
}

fn parse_line(line: &str) -> Case<'_> {
    let f: Vec<&str> = line.split('\t').collect();
    assert_eq!(f.len(), 12, "manifest line: {line}");
    let num = |s: &str| s.parse::<u32>().expect("manifest number");
    Case {
        name: f[0],
        input: f[1],
        w: num(f[2]),
        h: num(f[3]),
        mode: mode(f[4]),
        chain: f[5],
        status: f[6],
        output: f[7],
        out_w: num(f[8]),
        out_h: num(f[9]),
        out_mode: f[10],
        tolerance: f[11].parse().expect("tolerance"),
    }
}

/// Compares `got` with Pillow's bytes; `None` when equal within the tolerance.
fn compare(c: &Case<'_>, got: ImageRef<'_>, want: &[u8]) -> Option<String> {
    if (got.width(), got.height(), got.mode().name()) != (c.out_w, c.out_h, c.out_mode) {
        return Some(format!(
            "got {}x{} {}, Pillow {}x{} {}",
            got.width(),
            got.height(),
            got.mode(),
            c.out_w,
            c.out_h,
            c.out_mode
        ));
    }
    let ch = got.mode().channels();
    let mut first = None;
    let mut bad = 0usize;
    let mut worst = 0u8;
    for y in 0..got.height() {
        let row = got.row(y);
        let want_row = &want[y as usize * row.len()..][..row.len()];
        for (i, (&a, &b)) in row.iter().zip(want_row).enumerate() {
            let d = a.abs_diff(b);
            if d > c.tolerance {
                bad += 1;
                worst = worst.max(d);
                first.get_or_insert((i / ch, y, i % ch, a, b));
            }
        }
    }
    first.map(|(x, y, chan, a, b)| {
        format!(
            "{bad} bytes differ (max {worst}); first at x={x} y={y} channel {chan}: \
             frameflow {a}, Pillow {b}"
        )
    })
}

#[test]
fn matches_pillow() {
    let dir = generate();
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest");
    let mut lines = manifest.lines();
    let version = lines.next().unwrap_or_default();
    eprintln!("reference: {version}");
    if version != "# pillow 11.3.0" {
        eprintln!("warning: references made with {version}, the pinned version is 11.3.0");
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut scratch = Scratch::default();
    for line in lines {
        let c = parse_line(line);
        let chain = match Chain::parse(c.chain) {
            Ok(ch) => ch,
            Err(e) => {
                failures.push(format!("{}: chain does not parse: {e}", c.name));
                continue;
            }
        };
        let input = std::fs::read(dir.join(c.input)).expect("input");
        if c.status == "refused" {
            match chain.output_mode(c.mode) {
                Err(_) => checked += 1,
                Ok(m) => failures.push(format!(
                    "{}: Pillow refuses ({}), frameflow accepts and gives {m}",
                    c.name, c.output
                )),
            }
            continue;
        }
        let want = std::fs::read(dir.join(c.output)).expect("output");
        // Packed input, then the same pixels with padded rows (stride + 5).
        let rb = c.w as usize * c.mode.channels();
        let mut padded = Vec::new();
        for row in input.chunks(rb.max(1)) {
            padded.extend_from_slice(row);
            padded.extend_from_slice(&[0xA5; 5]);
        }
        for (label, data, stride) in [("", &input, rb), (" (padded stride)", &padded, rb + 5)] {
            let src = ImageRef::new(data, c.w, c.h, stride, c.mode).expect("input geometry");
            match chain.apply(src, &mut scratch) {
                Ok(got) => match compare(&c, got, &want) {
                    None => checked += 1,
                    Some(msg) => failures.push(format!("{}{label}: {msg}", c.name)),
                },
                Err(e) => {
                    failures.push(format!("{}{label}: Pillow accepts, frameflow: {e}", c.name))
                }
            }
        }
    }
    eprintln!("{checked} comparisons match Pillow");
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(60).collect();
        panic!(
            "{} mismatches against Pillow:\n{}{}",
            failures.len(),
            shown.iter().map(|s| format!("  {s}\n")).collect::<String>(),
            if failures.len() > 60 { "  …\n" } else { "" }
        );
    }
}
