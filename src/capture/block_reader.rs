//! Large-block buffered reading with absolute byte offsets.
//!
//! Capture readers parse records straight out of this buffer: the kernel is
//! asked for data in blocks of [`BLOCK_SIZE`] bytes and a packet is a slice of
//! the buffer, so reading a packet allocates nothing. Every position is known
//! as an absolute offset in the (decompressed) stream, which is what error
//! messages report.

use std::io::{self, Read};

/// How much is requested from the underlying reader at a time: small enough
/// that the block the kernel copied in is still in L2 cache when it is
/// decoded, large enough that system calls do not matter.
pub const BLOCK_SIZE: usize = 1 << 18;

/// A reader that keeps a window of the stream in memory.
pub struct BlockReader {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// First byte not yet consumed.
    start: usize,
    /// End of the valid data in `buf`.
    end: usize,
    /// Absolute stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl BlockReader {
    /// Wraps a reader; nothing is read until the first [`fill`](Self::fill).
    pub fn new(inner: Box<dyn Read + Send>) -> Self {
        Self { inner, buf: vec![0; BLOCK_SIZE], start: 0, end: 0, base: 0, eof: false }
    }

    /// Absolute offset of the next unconsumed byte.
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Makes at least `n` bytes available unless the stream ends first, and
    /// returns every byte available from the current position (which may be
    /// fewer than `n` only at the end of the stream).
    pub fn fill(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.start < n && !self.eof {
            self.read_more(n)?;
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// Marks `n` bytes as read. `n` never exceeds what `fill` returned.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Returns the `n` bytes at the current position, consuming them, or
    /// `None` (consuming nothing) when the stream ends before `n` bytes.
    pub fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        Ok(self.take_or_count(n)?.ok())
    }

    /// [`Self::take`], or when the stream ends before `n` bytes, how many
    /// bytes there are.
    pub fn take_or_count(&mut self, n: usize) -> io::Result<Result<&[u8], usize>> {
        if self.end - self.start < n && !self.eof {
            self.read_more(n)?;
        }
        let at = self.start;
        match self.buf.get(at..at + n).filter(|_| at + n <= self.end) {
            Some(bytes) => {
                self.start += n;
                Ok(Ok(bytes))
            }
            None => Ok(Err(self.end - at)),
        }
    }

    fn read_more(&mut self, n: usize) -> io::Result<()> {
        // Move the unconsumed tail to the front, then grow only when a single
        // record is larger than the buffer.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most 3 bytes per call, to exercise refills.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(3).min(self.0.len() - self.1);
            out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn take_tracks_offsets_across_refills() {
        let data: Vec<u8> = (0..=255).collect();
        let mut r = BlockReader::new(Box::new(Dribble(data, 0)));
        assert_eq!(r.take(10).unwrap().unwrap(), &(0..10).collect::<Vec<u8>>()[..]);
        assert_eq!(r.offset(), 10);
        assert_eq!(r.take(200).unwrap().unwrap()[0], 10);
        assert_eq!(r.offset(), 210);
        assert!(r.take(100).unwrap().is_none());
        assert_eq!(r.offset(), 210, "a short take consumes nothing");
        assert_eq!(r.fill(100).unwrap().len(), 46);
    }

    #[test]
    fn grows_for_records_larger_than_a_block() {
        let data = vec![7u8; BLOCK_SIZE * 2 + 5];
        let mut r = BlockReader::new(Box::new(io::Cursor::new(data)));
        r.take(5).unwrap().unwrap();
        let big = r.take(BLOCK_SIZE * 2).unwrap().unwrap();
        assert_eq!(big.len(), BLOCK_SIZE * 2);
        assert_eq!(r.offset(), BLOCK_SIZE as u64 * 2 + 5);
    }
}
