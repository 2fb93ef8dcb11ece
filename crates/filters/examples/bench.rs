//! Per-frame timings of filter chains on a 1920x1080 RGB frame.
//!
//! ```text
//! cargo run --release -p frameflow-filters --example bench [CHAIN...]
//! cargo run --release -p frameflow-filters --example bench -- \
//!     --raw frame.rgb --size 1920x1080 --runs 15 emboss median=3
//! ```
//!
//! Without `--raw` the frame is pseudo-random noise. Each chain runs once to warm up,
//! then `--runs` times (default 9); the output is one line per chain,
//! `CHAIN<TAB>median ms<TAB>min ms`, for `bench/filters.py`.

use frameflow_filters::{Chain, ImageRef, Mode, Scratch};
use std::time::Instant;

#[path = "../benches/common/steps.rs"]
mod steps;

fn usage(msg: &str) -> ! {
    eprintln!("bench: {msg}\nusage: bench [--raw FILE --size WxH] [--runs N] [CHAIN...]");
    std::process::exit(2);
}

fn main() {
    let (mut w, mut h) = (1920u32, 1080u32);
    let mut raw: Option<String> = None;
    let mut runs = 9usize;
    let mut chains: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--raw" => raw = Some(args.next().unwrap_or_else(|| usage("--raw needs a file"))),
            "--size" => {
                let s = args.next().unwrap_or_else(|| usage("--size needs WxH"));
                let (sw, sh) = s.split_once('x').unwrap_or_else(|| usage("--size WxH"));
                w = sw.parse().unwrap_or_else(|_| usage("bad width"));
                h = sh.parse().unwrap_or_else(|_| usage("bad height"));
            }
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--runs needs a positive number"));
            }
            _ => chains.push(a),
        }
    }
    let n = w as usize * h as usize * 3;
    let data: Vec<u8> = match raw {
        Some(path) => {
            let d = std::fs::read(&path).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
            if d.len() != n {
                usage(&format!(
                    "{path}: {} bytes, need {n} for {w}x{h} RGB",
                    d.len()
                ));
            }
            d
        }
        None => {
            let mut s = 12345u32;
            (0..n)
                .map(|_| {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (s >> 24) as u8
                })
                .collect()
        }
    };
    let src = ImageRef::new(&data, w, h, w as usize * 3, Mode::Rgb).expect("frame geometry");
    if chains.is_empty() {
        chains = steps::STEPS.iter().map(|s| s.to_string()).collect();
    }
    let mut scratch = Scratch::default();
    for spec in chains {
        let chain = match Chain::parse(&spec) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                println!("{spec}\tnan\tnan");
                continue;
            }
        };
        let mut times = Vec::with_capacity(runs);
        for i in 0..=runs {
            let t = Instant::now();
            if let Err(e) = chain.apply(src, &mut scratch) {
                eprintln!("{spec}: {e}");
                break;
            }
            let dt = t.elapsed().as_secs_f64() * 1e3;
            if i > 0 {
                times.push(dt);
            }
        }
        if times.is_empty() {
            println!("{spec}\tnan\tnan");
            continue;
        }
        times.sort_by(f64::total_cmp);
        println!("{spec}\t{:.4}\t{:.4}", times[times.len() / 2], times[0]);
    }
}
