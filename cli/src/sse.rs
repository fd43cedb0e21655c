//! Reading `text/event-stream` (Server-Sent Events): enough of the format for the
//! server's rollout stream — `event:` and `data:` lines, events separated by a blank line.

use futures_util::StreamExt as _;

/// An event: its name and its (joined) data lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Reads events from a response body.
#[derive(Debug)]
pub struct SseReader<S> {
    body: S,
    buffer: String,
}

impl<S> SseReader<S>
where
    S: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    pub fn new(body: S) -> Self {
        Self { body, buffer: String::new() }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next_event(&mut self) -> reqwest::Result<Option<SseEvent>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.body.next().await {
                Some(chunk) => self.buffer.push_str(&String::from_utf8_lossy(&chunk?).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = String::from("message");
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
        }
    }
    (!data.is_empty()).then(|| SseEvent { event, data: data.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_and_skips_comments() {
        assert_eq!(
            parse_block("event: rollout\ndata: {\"a\":1}\n\n"),
            Some(SseEvent { event: "rollout".into(), data: "{\"a\":1}".into() })
        );
        assert_eq!(parse_block(":keep-alive\n\n"), None);
        assert_eq!(parse_block("data: a\ndata: b\n\n").unwrap().data, "a\nb");
    }
}
