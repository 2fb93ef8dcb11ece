//! Rough per-frame timings of filter chains on a 1920x1080 RGB frame:
//! `cargo run --release -p frameflow-filters --example bench [CHAIN...]`.

use frameflow_filters::{Chain, ImageRef, Mode, Scratch};
use std::time::Instant;

fn main() {
    let (w, h) = (1920u32, 1080u32);
    let mut s = 12345u32;
    let data: Vec<u8> = (0..w as usize * h as usize * 3)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as u8
        })
        .collect();
    let src = ImageRef::new(&data, w, h, w as usize * 3, Mode::Rgb).expect("frame geometry");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let chains: Vec<String> = if args.is_empty() {
        [
            "emboss",
            "smooth",
            "blur",
            "smooth_more",
            "grayscale",
            "invert",
            "gaussian_blur=2",
            "box_blur=3",
            "unsharp_mask",
            "median=3",
            "min=3",
            "mode=3",
            "resize=640x360",
            "resize=640x360:lanczos",
            "rotate=90",
            "crop=640:360",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    } else {
        args
    };
    let mut scratch = Scratch::default();
    for spec in chains {
        let chain = match Chain::parse(&spec) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            if let Err(e) = chain.apply(src, &mut scratch) {
                eprintln!("{spec}: {e}");
                break;
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{spec:<28} {:7.2} ms", best * 1e3);
    }
}
