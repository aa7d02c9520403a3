//! Incremental SSE decoder: fed arbitrary byte chunks, yields whole events, never grows unbounded.

use bytes::{Buf, BytesMut};

use super::{SseError, SseEvent};

/// Default bound on the size of one event: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a byte stream into [`SseEvent`]s following the WHATWG event-stream rules.
///
/// Accepts `\n`, `\r\n` and `\r` line endings, splits at any byte, ignores comment lines and
/// events without `data:`. Memory is bounded by the maximum event size: a larger event yields
/// [`SseError::EventTooLarge`] once and is skipped up to its blank line.
#[derive(Debug)]
pub struct SseDecoder {
    /// Unconsumed bytes; the current event starts at index 0.
    buf: BytesMut,
    /// End of the complete lines of the current event already parsed.
    scanned: usize,
    /// Where to resume looking for a line terminator (bytes before it hold none).
    search_from: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
    max_event_size: usize,
    at_stream_start: bool,
    /// Discarding an oversized event up to the next blank line.
    skipping: bool,
    /// While skipping: part of the current line was already discarded, so it is not blank.
    skip_mid_line: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the default maximum event size.
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder that rejects events larger than `max_event_size` bytes.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            search_from: 0,
            event: None,
            data: String::new(),
            has_data: false,
            max_event_size: max_event_size.max(1),
            at_stream_start: true,
            skipping: false,
            skip_mid_line: false,
        }
    }

    /// Appends received bytes; call [`next_event`](Self::next_event) until it returns `None`.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, an error for an oversized one, or `None` when more bytes are
    /// needed.
    pub fn next_event(&mut self) -> Option<Result<SseEvent, SseError>> {
        self.next_inner(false)
    }

    /// At end of stream: the next remaining event, including a trailing one that lacks its blank
    /// line. Call until it returns `None`. Oversized leftovers are dropped.
    pub fn finish(&mut self) -> Option<SseEvent> {
        while let Some(result) = self.next_inner(true) {
            if let Ok(event) = result {
                return Some(event);
            }
        }
        if self.skipping {
            return None;
        }
        self.dispatch()
    }

    fn next_inner(&mut self, eof: bool) -> Option<Result<SseEvent, SseError>> {
        loop {
            let Some((end, next)) = self.find_line(eof) else {
                return self.on_incomplete_line();
            };
            if self.skipping {
                self.skip_line(end, next);
                continue;
            }
            if next > self.max_event_size {
                return Some(Err(self.overflow()));
            }
            let start = self.scanned;
            self.scanned = next;
            self.search_from = next;
            if end == start {
                if let Some(event) = self.dispatch() {
                    return Some(Ok(event));
                }
            } else {
                self.parse_field(start, end);
            }
        }
    }

    /// Finds the next complete line after `scanned`: `(line end, start of the following line)`.
    fn find_line(&mut self, eof: bool) -> Option<(usize, usize)> {
        let from = self.search_from.max(self.scanned);
        let found = memchr::memchr2(b'\n', b'\r', &self.buf[from..]).map(|offset| from + offset);
        let Some(end) = found else {
            self.search_from = self.buf.len();
            let has_rest = self.buf.len() > self.scanned;
            return (eof && has_rest).then_some((self.buf.len(), self.buf.len()));
        };
        if self.buf[end] == b'\n' {
            return Some((end, end + 1));
        }
        match self.buf.get(end + 1) {
            Some(b'\n') => Some((end, end + 2)),
            Some(_) => Some((end, end + 1)),
            // A '\r' at the very end may be the first half of "\r\n": wait for the next byte.
            None if eof => Some((end, end + 1)),
            None => {
                self.search_from = end;
                None
            }
        }
    }

    fn on_incomplete_line(&mut self) -> Option<Result<SseEvent, SseError>> {
        if self.skipping {
            // Keep a trailing '\r': it may pair with a '\n' still to come.
            let keep = usize::from(self.buf.last() == Some(&b'\r'));
            let discard = self.buf.len() - keep;
            if discard > 0 {
                self.buf.advance(discard);
                self.skip_mid_line = true;
            }
            self.search_from = 0;
            return None;
        }
        if self.buf.len() > self.max_event_size {
            return Some(Err(self.overflow()));
        }
        None
    }

    /// Abandons the current event and switches to skipping up to its blank line.
    fn overflow(&mut self) -> SseError {
        self.buf.advance(self.scanned);
        self.scanned = 0;
        self.search_from = 0;
        self.event = None;
        self.data = String::new();
        self.has_data = false;
        self.skipping = true;
        self.skip_mid_line = false;
        SseError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    fn skip_line(&mut self, end: usize, next: usize) {
        let blank = end == 0 && !self.skip_mid_line;
        self.buf.advance(next);
        self.scanned = 0;
        self.search_from = 0;
        self.skip_mid_line = false;
        if blank {
            self.skipping = false;
        }
    }

    /// Ends the current event at `scanned`; returns it if it carried data.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let raw = self.buf.split_to(self.scanned).freeze();
        self.search_from -= self.scanned.min(self.search_from);
        self.scanned = 0;
        let event = self.event.take();
        if !self.has_data {
            self.data.clear();
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            raw,
        })
    }

    fn parse_field(&mut self, start: usize, end: usize) {
        let mut line = &self.buf[start..end];
        if self.at_stream_start {
            self.at_stream_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.first() == Some(&b':') {
            return; // A comment, e.g. a keep-alive.
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => {
                let value = String::from_utf8_lossy(value);
                self.event = (!value.is_empty()).then(|| value.into_owned());
            }
            _ => {} // `id`, `retry` and unknown fields do not matter to moat.
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut SseDecoder) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(result) = decoder.next_event() {
            events.push(result.unwrap());
        }
        events
    }

    fn decode(input: &[u8]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        decoder.push(input);
        let mut events = decode_all(&mut decoder);
        while let Some(event) = decoder.finish() {
            events.push(event);
        }
        events
    }

    const TRANSCRIPT: &[u8] = b": hello\n\nevent: message_start\ndata: {\"a\":1}\n\n\
        event: ping\r\ndata: {}\r\n\r\n\
        data: line1\rdata: line2\r\r\
        : keep-alive\n\n\
        data: [DONE]\n\n";

    #[test]
    fn decodes_names_data_and_line_endings() {
        let events = decode(TRANSCRIPT);
        let summary: Vec<_> = events
            .iter()
            .map(|e| (e.event.as_deref(), e.data.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some("message_start"), "{\"a\":1}"),
                (Some("ping"), "{}"),
                (None, "line1\nline2"),
                (None, "[DONE]"),
            ]
        );
        assert!(events[3].is_done());
    }

    #[test]
    fn raw_is_the_exact_event_bytes() {
        let events = decode(TRANSCRIPT);
        assert_eq!(
            &events[0].raw[..],
            b"event: message_start\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(&events[1].raw[..], b"event: ping\r\ndata: {}\r\n\r\n");
        assert_eq!(&events[2].raw[..], b"data: line1\rdata: line2\r\r");
        assert_eq!(&events[3].raw[..], b"data: [DONE]\n\n");
    }

    #[test]
    fn byte_by_byte_split_gives_the_same_events() {
        let whole = decode(TRANSCRIPT);
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for byte in TRANSCRIPT {
            decoder.push(std::slice::from_ref(byte));
            events.extend(decode_all(&mut decoder));
        }
        events.extend(decoder.finish());
        assert_eq!(events, whole);
    }

    #[test]
    fn every_two_way_split_gives_the_same_events() {
        let whole = decode(TRANSCRIPT);
        for at in 0..=TRANSCRIPT.len() {
            let mut decoder = SseDecoder::new();
            decoder.push(&TRANSCRIPT[..at]);
            let mut events = decode_all(&mut decoder);
            decoder.push(&TRANSCRIPT[at..]);
            events.extend(decode_all(&mut decoder));
            events.extend(decoder.finish());
            assert_eq!(events, whole, "split at {at}");
        }
    }

    #[test]
    fn crlf_split_between_cr_and_lf_is_one_line_ending() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: a\r");
        assert!(decoder.next_event().is_none());
        decoder.push(b"\n\r");
        assert!(decoder.next_event().is_none());
        decoder.push(b"\n");
        let event = decoder.next_event().unwrap().unwrap();
        assert_eq!(event.data, "a");
        assert_eq!(&event.raw[..], b"data: a\r\n\r\n");
        assert!(decoder.next_event().is_none());
    }

    #[test]
    fn field_parsing_rules() {
        let events = decode(b"\xEF\xBB\xBFdata\ndata:x\ndata:  y\nid: 1\nretry: 5\nevent:\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "\nx\n y");
        assert_eq!(events[0].event, None);
    }

    #[test]
    fn comment_only_and_data_less_blocks_are_no_events() {
        assert!(decode(b": keep-alive\n\nevent: ping\n\n\n\n").is_empty());
    }

    #[test]
    fn finish_returns_a_trailing_event_without_blank_line() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: a\n\nevent: last\ndata: b");
        assert_eq!(decoder.next_event().unwrap().unwrap().data, "a");
        assert!(decoder.next_event().is_none());
        let last = decoder.finish().unwrap();
        assert_eq!(last.event.as_deref(), Some("last"));
        assert_eq!(last.data, "b");
        assert_eq!(&last.raw[..], b"event: last\ndata: b");
        assert!(decoder.finish().is_none());
    }

    #[test]
    fn oversized_event_is_an_error_then_decoding_resumes() {
        let mut decoder = SseDecoder::with_max_event_size(16);
        decoder.push(b"data: 0123456789abcdef");
        assert_eq!(
            decoder.next_event(),
            Some(Err(SseError::EventTooLarge { limit: 16 }))
        );
        for _ in 0..1000 {
            decoder.push(b"more bytes without any line end ");
            assert!(decoder.next_event().is_none());
        }
        assert!(decoder.buf.len() < 64, "skipped bytes are not kept");
        decoder.push(b"\r");
        decoder.push(b"\ndata: x\n\n");
        // `data: x` still belongs to the oversized event, which ends at the blank line after it.
        assert!(decoder.next_event().is_none());
        decoder.push(b"\ndata: ok\n\n");
        assert_eq!(decoder.next_event().unwrap().unwrap().data, "ok");
    }

    #[test]
    fn oversized_event_made_of_many_lines_is_an_error() {
        let mut decoder = SseDecoder::with_max_event_size(32);
        decoder.push(b"data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\ndata: ok\n\n");
        assert!(matches!(decoder.next_event(), Some(Err(_))));
        assert_eq!(decoder.next_event().unwrap().unwrap().data, "ok");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let events = decode(b"data: \xFF\xFE ok\n\n");
        assert_eq!(events[0].data, "\u{FFFD}\u{FFFD} ok");
    }
}
