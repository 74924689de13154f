//! Output capping: keep the head and the tail of a stream and count what was dropped in between.
//!
//! A command can print a gigabyte; we keep a bounded amount so that transcripts, the database and
//! the model's context stay small, and say exactly how much was left out.

use std::collections::VecDeque;

/// How much of a stream to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCap {
    pub head_bytes: usize,
    pub tail_bytes: usize,
}

impl Default for OutputCap {
    fn default() -> Self {
        Self {
            head_bytes: 16 * 1024,
            tail_bytes: 16 * 1024,
        }
    }
}

/// A stream reduced to its head and tail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CappedOutput {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    /// Every byte the stream carried, kept or not.
    pub total_bytes: u64,
}

impl CappedOutput {
    pub fn dropped_bytes(&self) -> u64 {
        self.total_bytes - (self.head.len() + self.tail.len()) as u64
    }

    /// Head and tail as text, with a marker saying how many bytes were dropped between them.
    pub fn to_text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        let dropped = self.dropped_bytes();
        if dropped > 0 {
            text.push_str(&format!("\n[… {dropped} bytes of output dropped …]\n"));
        }
        text.push_str(&String::from_utf8_lossy(&self.tail));
        text
    }
}

/// Accumulates a stream under an [`OutputCap`].
#[derive(Debug)]
pub struct CappedBuffer {
    cap: OutputCap,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl CappedBuffer {
    pub fn new(cap: OutputCap) -> Self {
        Self {
            cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, mut chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let head_room = self.cap.head_bytes.saturating_sub(self.head.len());
        if head_room > 0 {
            let take = head_room.min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        if self.cap.tail_bytes == 0 || chunk.is_empty() {
            return;
        }
        if chunk.len() >= self.cap.tail_bytes {
            self.tail.clear();
            self.tail
                .extend(&chunk[chunk.len() - self.cap.tail_bytes..]);
            return;
        }
        let overflow = (self.tail.len() + chunk.len()).saturating_sub(self.cap.tail_bytes);
        self.tail.drain(..overflow);
        self.tail.extend(chunk);
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn finish(self) -> CappedOutput {
        CappedOutput {
            head: self.head,
            tail: self.tail.into_iter().collect(),
            total_bytes: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(head: usize, tail: usize) -> CappedBuffer {
        CappedBuffer::new(OutputCap {
            head_bytes: head,
            tail_bytes: tail,
        })
    }

    #[test]
    fn short_output_is_kept_whole() {
        let mut b = cap(4, 4);
        b.push(b"abc");
        let out = b.finish();
        assert_eq!(out.to_text(), "abc");
        assert_eq!(out.dropped_bytes(), 0);
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_counts_the_rest() {
        let mut b = cap(3, 3);
        for chunk in [&b"0123"[..], b"45678", b"9"] {
            b.push(chunk);
        }
        let out = b.finish();
        assert_eq!(out.head, b"012");
        assert_eq!(out.tail, b"789");
        assert_eq!(out.total_bytes, 10);
        assert_eq!(out.dropped_bytes(), 4);
        assert_eq!(out.to_text(), "012\n[… 4 bytes of output dropped …]\n789");
    }

    #[test]
    fn a_huge_chunk_only_keeps_its_end_in_the_tail() {
        let mut b = cap(2, 2);
        b.push(&vec![b'x'; 1 << 20]);
        b.push(b"yz");
        let out = b.finish();
        assert_eq!(out.tail, b"yz");
        assert_eq!(out.dropped_bytes(), (1 << 20) - 2);
    }
}
