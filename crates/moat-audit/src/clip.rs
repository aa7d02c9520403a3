//! Client-chosen strings (user agent, model, end user, decision reasons) cut to a bounded length
//! before a record or a log line keeps them.
//!
//! A refusal is cheap only if what it writes is small: a 100 KB `User-Agent` on every bad-key
//! request would otherwise be 100 KB of audit log each. What is kept is the first
//! [`MAX_CLIENT_STRING`] bytes (cut on a character boundary) followed by a marker naming the
//! original length, so a reader sees that, and how much, was cut.

use std::borrow::Cow;

/// The most bytes of a client-chosen string a record or a log line keeps, before the marker.
pub const MAX_CLIENT_STRING: usize = 256;

/// `s` when at most `max` bytes long, else its first `max` bytes at most (on a character
/// boundary) and `…[truncated from N bytes]`.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[truncated from {} bytes]", &s[..end], s.len()))
}

/// [`clip`] at [`MAX_CLIENT_STRING`], owned.
pub fn clip_owned(s: String) -> String {
    match clip(&s, MAX_CLIENT_STRING) {
        Cow::Borrowed(_) => s,
        Cow::Owned(cut) => cut,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_stay_and_long_ones_are_cut_on_a_char_boundary() {
        assert_eq!(clip("curl/8.0", 256), "curl/8.0");
        let long = "é".repeat(200); // 400 bytes
        let cut = clip(&long, 255);
        assert!(cut.starts_with(&"é".repeat(127)));
        assert!(cut.ends_with("…[truncated from 400 bytes]"));
        assert!(cut.len() <= 255 + 40);
        assert_eq!(
            clip_owned("x".repeat(1 << 20)).len(),
            256 + "…[truncated from 1048576 bytes]".len()
        );
    }
}
