//! drop-oldest keeps a live input at the live edge when the workers, not the decoder, are
//! the slow side: the decoder is never starved of CPU by them, every frame the server
//! sends is decoded, and the pipeline stays within about a second of the stream's own
//! clock, however heavy the chain. Alone in its file so no other test shares the cores.

mod common;

use common::{LiveServer, frameflow, s};
use std::time::Duration;

#[test]
fn a_chain_slower_than_the_stream_drops_frames_and_keeps_up_with_the_live_edge() {
    let tmp = common::tempdir();
    // 20 s of 1280x720 at 25 fps: 500 frames, sent in real time. (Without the fix the
    // decoder fell behind by about a quarter of the stream time: 5 s here.)
    let clip = tmp.path().join("cam.ts");
    common::testsrc_clip(
        &clip,
        1280,
        720,
        20.0,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-f", "mpegts",
        ],
    );
    let sent = common::ffprobe_count_frames(&clip) as u64;
    let server = LiveServer::start(&clip, "mpegts", "live.ts", tmp.path());
    let stats = tmp.path().join("stats.json");
    let out = tmp.path().join("o");
    // mode=3 on 720p costs far more than the 40 ms a frame the stream allows each worker.
    let run = frameflow(
        [
            "run",
            "-i",
            &server.url,
            "-f",
            "mode=3,emboss",
            "--no-reconnect",
            "-o",
            &s(&out),
            "--stats-json",
            &s(&stats),
        ],
        Duration::from_secs(120),
    );
    run.assert_success();
    let get = |k: &str| common::stats_u64(&stats, k);
    let (decoded, written, dropped) = (
        get("frames_decoded"),
        get("frames_written"),
        get("frames_dropped"),
    );
    assert_eq!(
        decoded,
        sent,
        "every frame sent was decoded: {}",
        run.describe()
    );
    assert!(
        dropped > 0,
        "the workers were not the slow side: {}",
        run.describe()
    );
    assert_eq!(written + dropped, decoded, "{}", run.describe());
    assert_eq!(common::list_dir(&out).len() as u64, written);
    // On the stream's own clock: the decoder stayed within about DROP_GRACE (1 s) of it.
    // It fell another second behind each time a slot happened to be free (the drop
    // deadline was counted from there): 3 to 6 s behind after 20 s here.
    let text = std::fs::read_to_string(&stats).expect("stats");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let lag = v["streams"][0]["live_lag_ms"]["max"]
        .as_u64()
        .expect("live_lag_ms.max");
    assert!(
        lag <= 1600,
        "the decoder fell {lag} ms behind the stream: {text}"
    );
}
