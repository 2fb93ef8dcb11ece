#!/usr/bin/python3
"""A small RTSP server for frameflow's tests: gst-rtsp-server through GObject bindings.

  /usr/bin/python3 rtsp_server.py --port PORT [--path /cam] [--codec jpeg|h264]
                                  [--num-buffers N]

Serves a live 320x240 25 fps test pattern at rtsp://127.0.0.1:PORT/PATH, over TCP
(interleaved) and UDP, one fresh pipeline per client. Prints "READY rtsp://..." on
stdout once it is listening, and "SETUP Transport: ..." for every SETUP request. Needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0
(which brings gstreamer1.0-plugins-good for jpegenc/rtpjpegpay and -bad for openh264enc),
so run it with /usr/bin/python3, not a pyenv python.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

ENCODERS = {
    # plugins-good: RTP/JPEG (RFC 2435).
    "jpeg": "jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26",
    # plugins-bad (a dependency of the RTSP server package): H.264, a keyframe a second.
    "h264": "openh264enc gop-size=25 ! video/x-h264,profile=constrained-baseline "
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1",
}


def on_setup(_client, ctx):
    """Logs each SETUP's Transport header, so a test can tell TCP from UDP."""
    res, value = ctx.request.get_header(GstRtsp.RTSPHeaderField.TRANSPORT, 0)
    if res == GstRtsp.RTSPResult.OK:
        print(f"SETUP Transport: {value}", flush=True)


def on_client(_server, client):
    client.connect("setup-request", on_setup)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--codec", choices=sorted(ENCODERS), default="jpeg")
    ap.add_argument("--num-buffers", type=int, default=-1,
                    help="frames per client before end of stream (-1: endless)")
    args = ap.parse_args()

    Gst.init(None)
    launch = (
        f"( videotestsrc is-live=true pattern=smpte num-buffers={args.num_buffers} "
        "! video/x-raw,width=320,height=240,framerate=25/1,format=I420 "
        f"! {ENCODERS[args.codec]} )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        sys.exit(1)

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
