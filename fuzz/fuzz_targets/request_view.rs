//! The borrowed request views (OpenAI chat, Responses, Anthropic Messages) over arbitrary bytes:
//! never panic, and leading white space never changes what they accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_protocol::{RequestView, ViewApi};

fuzz_target!(|input: &[u8]| {
    let Some((&which, body)) = input.split_first() else {
        return;
    };
    let api = match which % 3 {
        0 => ViewApi::OpenAiChat,
        1 => ViewApi::OpenAiResponses,
        _ => ViewApi::AnthropicMessages,
    };
    let view = RequestView::parse(api, body);
    if let Ok(v) = &view {
        let _ = v.last_user_text();
    }
    let mut padded = b" \n\t".to_vec();
    padded.extend_from_slice(body);
    let again = RequestView::parse(api, &padded);
    assert_eq!(
        view.is_ok(),
        again.is_ok(),
        "leading white space changed the result"
    );
});
