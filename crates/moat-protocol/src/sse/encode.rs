//! Encoders for the SSE frames moat writes itself.

use bytes::Bytes;

/// OpenAI's end-of-stream frame.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// A comment frame for keep-alives: SDKs ignore comments, unlike `data:` lines.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Encodes one event: an optional `event:` line, one `data:` line per line of `data`, and the
/// terminating blank line. Line breaks inside `event` are cut off, as they would end the field.
pub fn encode_event(event: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 16 + event.map_or(0, str::len));
    if let Some(name) = event {
        out.push_str("event: ");
        out.push_str(first_line(name));
        out.push('\n');
    }
    for line in lines(data) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// Encodes a nameless event carrying `data`.
pub fn encode_data(data: &str) -> Bytes {
    encode_event(None, data)
}

fn first_line(text: &str) -> &str {
    text.split(['\r', '\n']).next().unwrap_or_default()
}

/// Splits on `\r\n`, `\r` and `\n`, the three line endings SSE accepts.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(at) => {
                let skip = if current[at..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[at + skip..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn encodes_named_event() {
        assert_eq!(
            encode_event(Some("ping"), "{}"),
            Bytes::from_static(b"event: ping\ndata: {}\n\n")
        );
    }

    #[test]
    fn splits_multi_line_data() {
        assert_eq!(
            encode_data("a\nb\r\nc\rd"),
            Bytes::from_static(b"data: a\ndata: b\ndata: c\ndata: d\n\n")
        );
    }

    #[test]
    fn empty_data_is_one_empty_line() {
        assert_eq!(encode_data(""), Bytes::from_static(b"data: \n\n"));
    }

    #[test]
    fn event_name_cannot_inject_lines() {
        assert_eq!(
            encode_event(Some("a\ndata: x"), "y"),
            Bytes::from_static(b"event: a\ndata: y\n\n")
        );
    }
}
