//! The `Host` header of an HTTP/1.x request at the start of a client's TCP
//! stream (RFC 9112 §3.2), without the port.

use std::sync::Arc;

use super::Parsed;

/// Request heads larger than this are not waited for.
pub const MAX_HEAD: usize = 8 * 1024;

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// The host the request names: `Done(None)` for a request without a Host
/// header (HTTP/1.0).
pub fn request_host(stream: &[u8]) -> Parsed<Option<Arc<str>>> {
    let starts_like_method = METHODS.iter().any(|m| {
        let n = m.len().min(stream.len());
        stream[..n] == m[..n]
    });
    if !starts_like_method || stream.is_empty() {
        return Parsed::NotThis;
    }
    let Some(end) = stream.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if stream.len() >= MAX_HEAD { Parsed::Done(None) } else { Parsed::NeedMore };
    };
    let head = &stream[..end];
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if line[..colon].eq_ignore_ascii_case(b"host") {
            let value = String::from_utf8_lossy(&line[colon + 1..]);
            let host = strip_port(value.trim());
            return Parsed::Done((!host.is_empty()).then(|| super::shared_name(host)));
        }
    }
    Parsed::Done(None)
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_header() {
        let req = b"GET /x HTTP/1.1\r\nUser-Agent: t\r\nHOST: Example.COM:8080\r\n\r\n";
        assert_eq!(request_host(req), Parsed::Done(Some("example.com".into())));
        assert_eq!(request_host(&req[..20]), Parsed::NeedMore);
        assert_eq!(request_host(b"GE"), Parsed::NeedMore);
        assert_eq!(request_host(b"GET / HTTP/1.0\r\n\r\n"), Parsed::Done(None));
        assert_eq!(
            request_host(b"POST / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n"),
            Parsed::Done(Some("2001:db8::1".into()))
        );
        assert_eq!(request_host(b"\x16\x03\x01"), Parsed::NotThis);
        assert_eq!(request_host(b"SSH-2.0-OpenSSH\r\n"), Parsed::NotThis);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(m in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut req = b"GET / HTTP/1.1\r\n".to_vec();
            req.extend_from_slice(&m);
            let _ = request_host(&req);
            let _ = request_host(&m);
        }
    }
}
