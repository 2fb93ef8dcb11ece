//! Every filter step, in short chains with random parameters, on small random images
//! (sides 0..=24, padded strides) of every mode (L, RGB, RGBA).
//!
//! Invariants: parsing and applying never panic (an `Err` is fine); `apply` succeeds
//! exactly when `output_mode` does, with that mode; the output buffer matches its size;
//! applying twice with the same scratch gives the same pixels; and for chains that run
//! row by row (`Chain::row_filter`), every row equals `apply`'s.
#![no_main]

use arbitrary::Arbitrary;
use frameflow_filters::{Chain, ImageRef, Mode, Scratch};
use libfuzzer_sys::fuzz_target;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// `FUZZ_PRINT=1` prints each input's chain and image, to read a reproducer.
fn print_inputs() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_PRINT").is_some_and(|v| v == "1"))
}

/// A blur radius: 0..32 in steps of 1/64 mostly, and 1 time in 16 up to the accepted
/// maximum (10000; the blurs cost O(width + radius) a line, so those are slow).
#[derive(Arbitrary, Debug)]
struct Radius(u16);

impl Radius {
    fn text(&self) -> String {
        if self.0 >= 0xF000 {
            format!("{}", f32::from(self.0 - 0xF000) * 2.442)
        } else {
            format!("{}", f32::from(self.0 % 2048) / 64.0)
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Step {
    Builtin(u8),
    Kernel {
        big: bool,
        weights: [i16; 25],
        div: u8,
        scale: Option<i16>,
        offset: Option<i16>,
    },
    Grayscale,
    Invert,
    GaussianBlur(Radius),
    BoxBlur(Radius),
    UnsharpMask {
        radius: Radius,
        percent: u32,
        threshold: u8,
    },
    Rank {
        which: u8,
        size: u8,
    },
    ModeFilter {
        size: u8,
    },
    Crop {
        w: u8,
        h: u8,
        xy: Option<(i16, i16)>,
    },
    Rotate(u8),
    Flip(bool),
    Resize {
        w: u8,
        h: u8,
        method: u8,
    },
}

const BUILTINS: [&str; 10] = [
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
];

/// A window size: 1..=16 mostly, and now and then (1 in 32) up to the maximum, 255 (a
/// 255x255 window on every pixel is slow under ASan, so not often).
fn window_size(b: u8) -> u32 {
    if b >= 248 {
        u32::from(b - 248) * 36 + 3
    } else {
        u32::from(b % 16) + 1
    }
}

impl Step {
    fn write(&self, out: &mut String) {
        match self {
            Step::Builtin(i) => out.push_str(BUILTINS[*i as usize % BUILTINS.len()]),
            Step::Kernel {
                big,
                weights,
                div,
                scale,
                offset,
            } => {
                let n = if *big { 25 } else { 9 };
                let div = f32::from(div % 16 + 1);
                out.push_str("kernel=");
                for (i, w) in weights[..n].iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{}", f32::from(*w) / div);
                }
                if let Some(s) = scale {
                    let _ = write!(out, ":scale={}", f32::from(*s) / div);
                }
                if let Some(o) = offset {
                    let _ = write!(out, ":offset={}", f32::from(*o) / 64.0);
                }
            }
            Step::Grayscale => out.push_str("grayscale"),
            Step::Invert => out.push_str("invert"),
            Step::GaussianBlur(r) => {
                let _ = write!(out, "gaussian_blur={}", r.text());
            }
            Step::BoxBlur(r) => {
                let _ = write!(out, "box_blur={}", r.text());
            }
            Step::UnsharpMask {
                radius,
                percent,
                threshold,
            } => {
                let _ = write!(
                    out,
                    "unsharp_mask={}:{}:{threshold}",
                    radius.text(),
                    percent % 1_000_001
                );
            }
            Step::Rank { which, size } => {
                let name = ["median", "min", "max"][*which as usize % 3];
                let _ = write!(out, "{name}={}", window_size(*size) | 1);
            }
            Step::ModeFilter { size } => {
                let _ = write!(out, "mode={}", window_size(*size));
            }
            Step::Crop { w, h, xy } => {
                let _ = write!(out, "crop={}:{}", w % 48 + 1, h % 48 + 1);
                if let Some((x, y)) = xy {
                    let _ = write!(out, ":{x}:{y}");
                }
            }
            Step::Rotate(a) => {
                let _ = write!(out, "rotate={}", [90, 180, 270][*a as usize % 3]);
            }
            Step::Flip(h) => out.push_str(if *h { "flip=h" } else { "flip=v" }),
            Step::Resize { w, h, method } => {
                let m = ["bicubic", "bilinear", "lanczos", "nearest"][*method as usize % 4];
                let _ = write!(out, "resize={}x{}:{m}", w % 48 + 1, h % 48 + 1);
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    w: u8,
    h: u8,
    mode: u8,
    pad: u8,
    steps: Vec<Step>,
    pixels: Vec<u8>,
}

fuzz_target!(|input: Input| {
    if input.steps.len() > 4 {
        return;
    }
    let mut text = String::new();
    for (i, s) in input.steps.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        s.write(&mut text);
    }
    let Ok(chain) = Chain::parse(&text) else {
        return;
    };

    let mode = [Mode::L, Mode::Rgb, Mode::Rgba][input.mode as usize % 3];
    let (w, h) = (u32::from(input.w % 25), u32::from(input.h % 25));
    let row_bytes = w as usize * mode.channels();
    let stride = row_bytes + usize::from(input.pad % 4);
    let len = (stride * h as usize).saturating_sub(stride - row_bytes);
    let data: Vec<u8> = if input.pixels.is_empty() {
        (0..len).map(|i| (i * 37 % 256) as u8).collect()
    } else {
        input.pixels.iter().copied().cycle().take(len).collect()
    };
    if print_inputs() {
        eprintln!("chain {text:?} on {w}x{h} {mode} (stride {stride})");
    }
    let Ok(src) = ImageRef::new(&data, w, h, stride, mode) else {
        return;
    };

    let expected_mode = chain.output_mode(mode);
    let mut scratch = Scratch::default();
    let first = chain.apply(src, &mut scratch).map(|o| {
        assert!(o.stride() >= o.row_bytes());
        assert!(
            o.validate().is_ok(),
            "{text}: invalid output {}x{}",
            o.width(),
            o.height()
        );
        let rows: Vec<Vec<u8>> = (0..o.height()).map(|y| o.row(y).to_vec()).collect();
        (o.width(), o.height(), o.mode(), rows)
    });
    match (&expected_mode, &first) {
        (Ok(m), Ok((_, _, om, _))) => assert_eq!(m, om, "{text}: output_mode disagrees"),
        (Err(_), Err(_)) => return,
        (a, b) => panic!(
            "{text}: output_mode {a:?} but apply {:?}",
            b.as_ref().map(|o| o.2)
        ),
    }
    let Ok((ow, oh, omode, rows)) = first else {
        return;
    };

    // The same scratch again (now grown): same result.
    let again = chain.apply(src, &mut scratch).expect("second apply");
    assert_eq!(
        (again.width(), again.height(), again.mode()),
        (ow, oh, omode)
    );
    for (y, row) in rows.iter().enumerate() {
        assert_eq!(
            again.row(y as u32),
            row.as_slice(),
            "{text}: row {y} differs on reuse"
        );
    }

    // Row-by-row path: identical rows.
    if let Some(rf) = chain.row_filter() {
        assert_eq!(
            (ow, oh, omode),
            (w, h, mode),
            "{text}: row filter changes shape"
        );
        let r = rf.radius();
        let mut out = vec![0u8; row_bytes];
        for y in 0..h as usize {
            let window: Vec<&[u8]> = (0..=2 * r)
                .map(|k| {
                    let yy = (y + k).saturating_sub(r).min(h as usize - 1);
                    src.row(yy as u32)
                })
                .collect();
            rf.row(
                &window,
                y,
                w as usize,
                h as usize,
                mode.channels(),
                &mut out,
            );
            assert_eq!(
                out, rows[y],
                "{text}: row {y} of {w}x{h} {mode} differs from apply"
            );
        }
    }
});
