//! Criterion benchmark of every filter step on one 1920x1080 RGB frame:
//! `cargo bench -p frameflow-filters [-- FILTER]`. Kept short (10 samples, 1 s each):
//! `bench/filters.py` at the workspace root compares the same steps with Pillow.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frameflow_filters::{Chain, ImageRef, Mode, Scratch};
use std::hint::black_box;
use std::time::Duration;

const W: u32 = 1920;
const H: u32 = 1080;

#[path = "common/steps.rs"]
mod steps;
use steps::STEPS;

/// A smooth gradient with some pseudo-random texture, deterministic.
fn frame() -> Vec<u8> {
    let mut s = 2018u32;
    let mut data = Vec::with_capacity((W * H * 3) as usize);
    for y in 0..H {
        for x in 0..W {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = s >> 29;
            data.push(((x * 255 / W) + noise).min(255) as u8);
            data.push(((y * 255 / H) + noise).min(255) as u8);
            data.push((((x + y) / 12) % 256) as u8);
        }
    }
    data
}

fn filters(c: &mut Criterion) {
    let data = frame();
    let src = ImageRef::new(&data, W, H, W as usize * 3, Mode::Rgb).expect("frame");
    let mut group = c.benchmark_group("1080p_rgb");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(data.len() as u64));
    let mut scratch = Scratch::default();
    for spec in STEPS {
        let chain = Chain::parse(spec).expect("bench chain parses");
        group.bench_function(*spec, |b| {
            b.iter(|| {
                let out = chain.apply(black_box(src), &mut scratch).expect("apply");
                black_box(out.data().len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
