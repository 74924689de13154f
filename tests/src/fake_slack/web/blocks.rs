//! Block Kit's limits, as Slack enforces them on `chat.postMessage`, `chat.update` and
//! `chat.postEphemeral` (`invalid_blocks`): 50 blocks a message; a section's text 3,000
//! characters and its fields 10 of 2,000; a header's text 150; a button's text 75 and value
//! 2,000; an actions block 25 elements; a context block 10 elements; a `block_id` and an
//! `action_id` 255.

use serde_json::Value;

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn element_ok(e: &Value) -> bool {
    let button = e["type"] == "button";
    chars(&e["action_id"]) <= 255
        && (!button || (chars(&e["text"]["text"]) <= 75 && chars(&e["value"]) <= 2000))
}

fn block_ok(b: &Value) -> bool {
    let elements = b["elements"].as_array().map_or(&[][..], Vec::as_slice);
    chars(&b["block_id"]) <= 255
        && match b["type"].as_str() {
            Some("section") => {
                let fields = b["fields"].as_array().map_or(&[][..], Vec::as_slice);
                chars(&b["text"]["text"]) <= 3000
                    && fields.len() <= 10
                    && fields.iter().all(|f| chars(&f["text"]) <= 2000)
                    && (b["accessory"].is_null() || element_ok(&b["accessory"]))
            }
            Some("header") => chars(&b["text"]["text"]) <= 150,
            Some("actions") => elements.len() <= 25 && elements.iter().all(element_ok),
            Some("context") => {
                elements.len() <= 10 && elements.iter().all(|e| chars(&e["text"]) <= 3000)
            }
            Some(_) => true,
            None => false,
        }
}

/// Whether a message's `blocks` keep Block Kit's limits.
pub(super) fn within_limits(blocks: &[Value]) -> bool {
    blocks.len() <= 50 && blocks.iter().all(block_ok)
}
