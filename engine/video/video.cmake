# FFmpeg MP4 writer and image decoding. Owner: video work.
