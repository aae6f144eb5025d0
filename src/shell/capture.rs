//! Capturing one output stream of a command in bounded memory.
//!
//! A command may print gigabytes (`yes`, `cat` of a huge log). We must keep reading so the writer
//! never blocks on a full pipe, yet only keep what the model can use: the first half of the cap,
//! a ring buffer holding the last half, and a count of every byte seen.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::text::{incomplete_utf8_suffix_len, omission_marker, orphan_continuation_prefix_len};

/// Bytes read from a pipe per call; the Linux pipe buffer is 64 KiB, so one read can empty it.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The head, tail and size of a byte stream, holding at most `max_bytes` of it in memory.
#[derive(Debug)]
pub(crate) struct BoundedCapture {
    head: Vec<u8>,
    head_limit: usize,
    tail: VecDeque<u8>,
    tail_limit: usize,
    total_bytes: u64,
}

/// What a stream looked like, ready for [`super::ShellOutcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapturedText {
    /// Lossy UTF-8: head, omission marker and tail when truncated, else the whole stream.
    pub text: String,
    /// Whether bytes were dropped from the middle.
    pub truncated: bool,
    /// Every byte the stream carried, kept or not.
    pub total_bytes: u64,
}

impl BoundedCapture {
    /// A capture that keeps the first and the last `max_bytes / 2` bytes.
    pub(crate) fn new(max_bytes: usize) -> Self {
        let half = max_bytes / 2;
        Self {
            head: Vec::new(),
            head_limit: half,
            tail: VecDeque::new(),
            tail_limit: half,
            total_bytes: 0,
        }
    }

    /// Records the next bytes of the stream.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) {
        self.total_bytes += chunk.len() as u64;
        let head_room = self.head_limit - self.head.len();
        if head_room > 0 {
            let into_head = head_room.min(chunk.len());
            self.head.extend_from_slice(&chunk[..into_head]);
            chunk = &chunk[into_head..];
        }
        if chunk.len() >= self.tail_limit {
            self.tail.clear();
            self.tail.extend(&chunk[chunk.len() - self.tail_limit..]);
        } else {
            let overflow = (self.tail.len() + chunk.len()).saturating_sub(self.tail_limit);
            self.tail.drain(..overflow);
            self.tail.extend(chunk);
        }
    }

    /// Turns the capture into text: the whole stream if it fit, else head + marker + tail.
    pub(crate) fn finish(mut self) -> CapturedText {
        let kept_bytes = (self.head.len() + self.tail.len()) as u64;
        if kept_bytes == self.total_bytes {
            let mut whole = self.head;
            whole.extend(self.tail);
            return CapturedText {
                text: String::from_utf8_lossy(&whole).into_owned(),
                truncated: false,
                total_bytes: self.total_bytes,
            };
        }
        // Cutting a UTF-8 character in two would show two replacement characters for text that
        // is fine; drop the pieces and count them as omitted instead.
        let head_end = self.head.len() - incomplete_utf8_suffix_len(&self.head);
        let head = &self.head[..head_end];
        let tail = self.tail.make_contiguous();
        let tail = &tail[orphan_continuation_prefix_len(tail)..];
        let omitted = self.total_bytes - (head.len() + tail.len()) as u64;
        let mut text = String::from_utf8_lossy(head).into_owned();
        text.push_str(&omission_marker(omitted));
        text.push_str(&String::from_utf8_lossy(tail));
        CapturedText {
            text,
            truncated: true,
            total_bytes: self.total_bytes,
        }
    }
}

/// Reads `reader` to its end (or until `stop` turns true) into a capture of `max_bytes`.
///
/// `stop` exists because a process that left our process group (`setsid`) can hold the pipe
/// open forever; the caller gives up on such a stream instead of hanging. A dropped `stop`
/// sender also stops the read. A read error ends the stream: what was read so far is kept.
pub(crate) async fn drain<R: AsyncRead + Unpin>(
    reader: Option<R>,
    max_bytes: usize,
    mut stop: watch::Receiver<bool>,
) -> BoundedCapture {
    let mut capture = BoundedCapture::new(max_bytes);
    let Some(mut reader) = reader else {
        return capture;
    };
    let mut buffer = vec![0u8; READ_CHUNK_BYTES];
    loop {
        tokio::select! {
            // Stop first: a stream that always has data must still be abandoned when asked.
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            read = reader.read(&mut buffer) => match read {
                Ok(0) => break,
                Ok(count) => capture.push(&buffer[..count]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            },
        }
    }
    capture
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture_of(max_bytes: usize, chunks: &[&[u8]]) -> CapturedText {
        let mut capture = BoundedCapture::new(max_bytes);
        for chunk in chunks {
            capture.push(chunk);
        }
        capture.finish()
    }

    #[test]
    fn stream_that_fits_is_kept_whole() {
        let captured = capture_of(10, &[b"hello", b" ", b"you"]);
        assert_eq!(captured.text, "hello you");
        assert!(!captured.truncated);
        assert_eq!(captured.total_bytes, 9);
        assert_eq!(capture_of(10, &[]).text, "");
    }

    #[test]
    fn long_stream_keeps_head_and_tail_whatever_the_chunking() {
        let stream: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let expected_head = String::from_utf8_lossy(&stream[..8]).into_owned();
        let expected_tail = String::from_utf8_lossy(&stream[992..]).into_owned();
        let expected = format!("{expected_head}\n[... 984 bytes omitted ...]\n{expected_tail}");
        for chunk_size in [1, 3, 7, 8, 9, 64, 1000] {
            let chunks: Vec<&[u8]> = stream.chunks(chunk_size).collect();
            let captured = capture_of(16, &chunks);
            assert_eq!(captured.text, expected, "chunk size {chunk_size}");
            assert!(captured.truncated);
            assert_eq!(captured.total_bytes, 1000);
        }
    }

    #[test]
    fn memory_stays_at_the_cap() {
        let mut capture = BoundedCapture::new(100);
        let chunk = [b'x'; 4096];
        for _ in 0..1000 {
            capture.push(&chunk);
        }
        assert_eq!(capture.head.len() + capture.tail.len(), 100);
        assert!(capture.tail.capacity() < 4096 * 2);
        assert_eq!(capture.total_bytes, 4_096_000);
    }

    #[test]
    fn cut_characters_are_counted_as_omitted_not_garbled() {
        // 10 × "日" (3 bytes each): a cap of 8 cuts inside a character at both edges.
        let stream = "日".repeat(10);
        let captured = capture_of(8, &[stream.as_bytes()]);
        assert_eq!(captured.text, "日\n[... 24 bytes omitted ...]\n日");
        assert_eq!(captured.total_bytes, 30);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let captured = capture_of(100, &[b"\xff\xfeok"]);
        assert_eq!(captured.text, "\u{FFFD}\u{FFFD}ok");
    }

    #[test]
    fn zero_cap_keeps_only_the_count() {
        let captured = capture_of(0, &[b"abc"]);
        assert_eq!(captured.text, "\n[... 3 bytes omitted ...]\n");
        assert!(captured.truncated);
    }

    #[tokio::test]
    async fn drain_reads_to_the_end_and_stops_when_asked() {
        let (_keep_running, running) = watch::channel(false);
        let finished = drain(Some(&b"some output"[..]), 100, running)
            .await
            .finish();
        assert_eq!(finished.text, "some output");

        // A stream that never ends (the write half stays open) is abandoned on `stop`.
        let (_writer, reader) = tokio::io::duplex(64);
        let (stop, stopping) = watch::channel(false);
        let reading = tokio::spawn(drain(Some(reader), 100, stopping));
        stop.send(true).expect("drain is listening");
        let abandoned = tokio::time::timeout(std::time::Duration::from_secs(30), reading)
            .await
            .expect("drain stopped")
            .expect("drain did not panic");
        assert_eq!(abandoned.finish().total_bytes, 0);
    }
}
