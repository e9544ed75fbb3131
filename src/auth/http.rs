//! HTTP helpers shared by the token provider and the proxy client: capped body reads,
//! `Retry-After` parsing and error text without URLs' secrets (there are none in our URLs, but
//! request bodies never reach these messages either).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Why a body could not be read in full.
#[derive(Debug)]
pub(crate) enum BodyError {
    TooLarge,
    Transport(String),
    Timeout,
}

/// Reads a response body chunk by chunk and gives up as soon as it would exceed `limit` bytes,
/// so a huge or endless body costs at most `limit` bytes of memory.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if let Some(len) = response.content_length()
        && len > limit as u64
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            Err(e) => return Err(BodyError::Transport(error_text(&e))),
        }
    }
}

/// `Retry-After` as a delay from now: either delta-seconds or an HTTP date (a date in the past
/// means zero), at most [`crate::clock::MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    crate::clock::parse_retry_after(value, SystemTime::now())
}

/// A reqwest error with its causes ("error sending request: connection refused"), without the
/// Debug noise.
pub(crate) fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// ", retry after Ns" for error messages, or nothing.
pub(crate) fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}s", d.as_secs_f64().ceil() as u64),
        None => String::new(),
    }
}

/// The first `max` characters of `text` (on a char boundary), with "…" when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("äöüß", 2), "äö…");
    }
}
