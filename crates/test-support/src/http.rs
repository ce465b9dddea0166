//! Raw HTTP/1.1 requests, for what a client library would not send.

/// A raw HTTP/1.1 reply: status, header block and body text.
pub struct Reply {
    pub status: u16,
    pub head: String,
    /// The body as text (lossy).
    pub body: String,
    /// The body as sent (DER, say).
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The value of header `name`, if the reply has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection to `url` (plain HTTP on loopback), with
/// `headers` as given (a `Host` among them replaces the default) and `Content-Length` only when
/// there is a body: what a careless or hostile client can send.
pub fn http1(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    use std::fmt::Write as _;
    use std::io::{Read, Write as _};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("the server accepts connections");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        let _ = write!(head, "Host: {addr}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body.unwrap_or_default());
    // Read the head, then as many bytes as it announces: some servers (chromedriver) keep the
    // connection open whatever `Connection: close` asked.
    let mut reader = std::io::BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut reader, &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    let head = head.trim_end().to_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let mut reply = Reply {
        status,
        head,
        body: String::new(),
        bytes: Vec::new(),
    };
    let mut body = Vec::new();
    match reply
        .header("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(length) => {
            body.resize(length, 0);
            let _ = reader.read_exact(&mut body);
        }
        None => {
            let _ = reader.read_to_end(&mut body);
        }
    }
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply.bytes = body;
    reply
}
