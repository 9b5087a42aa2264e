//! An SMTP client over std::net (RFC 5321): EHLO, STARTTLS (RFC 3207), AUTH PLAIN or LOGIN
//! (RFC 4954), MAIL/RCPT/DATA with dot-stuffing, QUIT. Port 465 speaks TLS from the first byte
//! (RFC 8314) instead of upgrading with STARTTLS.
//!
//! TLS is rustls with the ring provider; the server's certificate must chain to Mozilla's
//! roots or to a certificate in `ca_file` and name `host`. The password is sent only over TLS
//! or to a loopback address, and never appears in errors or logs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};

use super::NotifyError;
use super::mime;
use crate::units::HumanDuration;

/// `[smtp]` in tallyd's configuration: the server email goes through.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// 587 (submission with STARTTLS) by default; 465 speaks TLS from the start; 25 is plain.
    pub port: u16,
    /// Upgrade the connection with STARTTLS before authenticating and sending (refusing to go
    /// on when the server does not offer it).
    pub starttls: bool,
    pub username: Option<String>,
    /// Also read from the environment variable `TALLY_SMTP_PASSWORD`; never printed.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// The sender address (`MAIL FROM` and the `From:` header).
    pub from: String,
    /// A PEM file of CA certificates trusted besides Mozilla's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Longest wait for connecting and for each reply.
    #[serde(
        serialize_with = "serialize_duration",
        deserialize_with = "deserialize_duration"
    )]
    pub timeout: Duration,
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    HumanDuration(*d).serialize(s)
}

fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    HumanDuration::deserialize(d).map(|h| h.0)
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 587,
            starttls: true,
            username: None,
            password: None,
            from: String::new(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpSettings {
    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<(), NotifyError> {
        if self.host.trim().is_empty() {
            return Err(invalid("smtp.host is not set"));
        }
        if self.port == 0 {
            return Err(invalid("smtp.port must be 1 to 65535"));
        }
        check_address(&self.from).map_err(|e| invalid(format!("smtp.from: {e}")))?;
        if self.timeout.is_zero() {
            return Err(invalid("smtp.timeout must be positive"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(invalid("smtp.password is set but smtp.username is not"));
        }
        Ok(())
    }
}

/// One email: plain text, optionally an HTML alternative, and attachments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Email {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// A file attached to an [`Email`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

fn invalid(reason: impl Into<String>) -> NotifyError {
    NotifyError::Invalid {
        reason: reason.into(),
    }
}

/// An address as SMTP carries it in `<...>`: `local@domain`, printable ASCII or UTF-8 without
/// spaces, angle brackets or line breaks.
fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{address:?} is not an email address ({why})"));
    if address.len() > 254 {
        return bad("longer than 254 bytes");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return bad("no @");
    };
    if local.is_empty() || domain.is_empty() {
        return bad("empty part before or after @");
    }
    if address
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "<>()[],;:\\\"".contains(c))
    {
        return bad("spaces, control characters or special characters");
    }
    Ok(())
}

/// Sends `message` through the server of `settings`; returns once the server accepted it for
/// delivery (250 after DATA).
pub fn send_mail(settings: &SmtpSettings, message: &Email) -> Result<(), NotifyError> {
    settings.validate()?;
    if message.to.is_empty() {
        return Err(invalid("the email has no recipient"));
    }
    for to in &message.to {
        check_address(to).map_err(invalid)?;
    }
    let mut session = Session::connect(settings)?;
    let outcome = session.deliver(settings, message);
    if outcome.is_ok() {
        let _ = session.command("QUIT", "QUIT", &[221]);
    }
    outcome
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// Longest reply accepted (all lines together); servers send a few hundred bytes.
const MAX_REPLY_BYTES: usize = 64 * 1024;

struct Session {
    transport: Option<Transport>,
    /// Bytes read past the end of the last reply.
    buffer: Vec<u8>,
    host: String,
    port: u16,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Session {
    fn connect(settings: &SmtpSettings) -> Result<Session, NotifyError> {
        let host = settings.host.trim().to_string();
        let port = settings.port;
        let connect_error = |source| NotifyError::Connect {
            host: host.clone(),
            port,
            source,
        };
        let addresses: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(connect_error)?
            .collect();
        let mut last_error =
            std::io::Error::new(std::io::ErrorKind::NotFound, "the host name has no address");
        let mut stream = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, settings.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        let stream = stream.ok_or_else(|| connect_error(last_error))?;
        let io = |during: &str| {
            let (host, during) = (host.clone(), during.to_string());
            move |source| NotifyError::Io {
                host,
                port,
                during,
                source,
            }
        };
        stream
            .set_read_timeout(Some(settings.timeout))
            .map_err(io("setting the timeout"))?;
        stream
            .set_write_timeout(Some(settings.timeout))
            .map_err(io("setting the timeout"))?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().map_err(io("connecting"))?;
        let local = stream.local_addr().map_err(io("connecting"))?;
        let mut session = Session {
            transport: Some(Transport::Plain(stream)),
            buffer: Vec::new(),
            host,
            port,
            peer,
            local,
        };
        if port == 465 {
            session.start_tls(settings)?;
        }
        let (code, text) = session.read_reply("reading the greeting")?;
        if code != 220 {
            return Err(session.refused("the greeting", code, text));
        }
        Ok(session)
    }

    fn refused(&self, command: &str, code: u16, text: String) -> NotifyError {
        NotifyError::Smtp {
            host: self.host.clone(),
            port: self.port,
            command: command.to_string(),
            code,
            text,
        }
    }

    fn protocol(&self, reason: impl Into<String>) -> NotifyError {
        NotifyError::Protocol {
            host: self.host.clone(),
            port: self.port,
            reason: reason.into(),
        }
    }

    fn io_error(&self, during: &str, source: std::io::Error) -> NotifyError {
        // rustls reports certificate and handshake failures through io::Error.
        if let Some(tls) = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return NotifyError::Tls {
                host: self.host.clone(),
                port: self.port,
                reason: tls.to_string(),
            };
        }
        NotifyError::Io {
            host: self.host.clone(),
            port: self.port,
            during: during.to_string(),
            source,
        }
    }

    fn transport(&mut self) -> Result<&mut Transport, NotifyError> {
        let (host, port) = (self.host.clone(), self.port);
        self.transport.as_mut().ok_or(NotifyError::Protocol {
            host,
            port,
            reason: "the connection was closed".into(),
        })
    }

    /// Reads one reply, possibly of several lines (`250-...` continues, `250 ...` ends).
    fn read_reply(&mut self, during: &str) -> Result<(u16, String), NotifyError> {
        let mut lines: Vec<String> = Vec::new();
        let mut total = 0usize;
        loop {
            let newline = self.buffer.iter().position(|&b| b == b'\n');
            let Some(end) = newline else {
                if self.buffer.len() > MAX_REPLY_BYTES {
                    return Err(self.protocol("a reply line longer than 64 KiB"));
                }
                let mut chunk = [0u8; 4096];
                let n = match self.transport()?.read(&mut chunk) {
                    Ok(n) => n,
                    Err(e) => return Err(self.io_error(during, e)),
                };
                if n == 0 {
                    return Err(self.io_error(
                        during,
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server closed the connection",
                        ),
                    ));
                }
                self.buffer.extend_from_slice(&chunk[..n]);
                continue;
            };
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            total += line.len();
            if total > MAX_REPLY_BYTES {
                return Err(self.protocol("a reply longer than 64 KiB"));
            }
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let code = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| {
                    self.protocol(format!("malformed reply while {during}: {line:?}"))
                })?;
            let separator = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_string());
            match separator {
                Some(b'-') => continue,
                None | Some(b' ') => return Ok((code, lines.join("\n"))),
                Some(_) => {
                    return Err(self.protocol(format!("malformed reply while {during}: {line:?}")));
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8], during: &str) -> Result<(), NotifyError> {
        let outcome = {
            let transport = self.transport()?;
            transport.write_all(bytes).and_then(|()| transport.flush())
        };
        outcome.map_err(|e| self.io_error(during, e))
    }

    /// Sends `line` (shown as `shown` in errors, so secrets stay out) and expects one of the
    /// `accepted` reply codes.
    fn command(
        &mut self,
        line: &str,
        shown: &str,
        accepted: &[u16],
    ) -> Result<(u16, String), NotifyError> {
        let during = format!("sending {shown}");
        self.send(format!("{line}\r\n").as_bytes(), &during)?;
        let (code, text) = self.read_reply(&format!("waiting for the reply to {shown}"))?;
        if accepted.contains(&code) {
            Ok((code, text))
        } else {
            Err(self.refused(shown, code, text))
        }
    }

    fn ehlo(&mut self) -> Result<Vec<String>, NotifyError> {
        let name = match self.local {
            SocketAddr::V4(a) => format!("[{}]", a.ip()),
            SocketAddr::V6(a) => format!("[IPv6:{}]", a.ip()),
        };
        let (_, text) = self.command(&format!("EHLO {name}"), "EHLO", &[250])?;
        Ok(text
            .lines()
            .skip(1)
            .map(|l| l.trim().to_ascii_uppercase())
            .collect())
    }

    fn start_tls(&mut self, settings: &SmtpSettings) -> Result<(), NotifyError> {
        if !self.buffer.is_empty() {
            // Bytes sent before the handshake could be an injected command (CVE-2011-0411).
            return Err(self.protocol("the server sent data after its STARTTLS reply"));
        }
        let config = tls_config(settings).map_err(|reason| NotifyError::Tls {
            host: self.host.clone(),
            port: self.port,
            reason,
        })?;
        let server_name =
            ServerName::try_from(self.host.clone()).map_err(|e| NotifyError::Tls {
                host: self.host.clone(),
                port: self.port,
                reason: format!("{:?} is not a valid server name: {e}", self.host),
            })?;
        let mut connection =
            rustls::ClientConnection::new(Arc::new(config), server_name).map_err(|e| {
                NotifyError::Tls {
                    host: self.host.clone(),
                    port: self.port,
                    reason: e.to_string(),
                }
            })?;
        let Some(Transport::Plain(mut stream)) = self.transport.take() else {
            return Err(self.protocol("TLS is already on"));
        };
        while connection.is_handshaking() {
            if let Err(e) = connection.complete_io(&mut stream) {
                return Err(self.io_error("the TLS handshake", e));
            }
        }
        self.transport = Some(Transport::Tls(Box::new(rustls::StreamOwned::new(
            connection, stream,
        ))));
        Ok(())
    }

    fn is_tls(&self) -> bool {
        matches!(self.transport, Some(Transport::Tls(_)))
    }

    fn deliver(&mut self, settings: &SmtpSettings, message: &Email) -> Result<(), NotifyError> {
        let mut extensions = self.ehlo()?;
        if settings.starttls && !self.is_tls() {
            if !extensions.iter().any(|e| e == "STARTTLS") {
                return Err(self.protocol(
                    "the server does not offer STARTTLS; set smtp.starttls = false to send in the clear",
                ));
            }
            self.command("STARTTLS", "STARTTLS", &[220])?;
            self.start_tls(settings)?;
            extensions = self.ehlo()?;
        }
        if let Some(username) = &settings.username {
            if !self.is_tls() && !self.peer.ip().is_loopback() {
                return Err(invalid(
                    "refusing to send the SMTP password over an unencrypted connection: set smtp.starttls = true or use port 465",
                ));
            }
            let password = settings.password.as_deref().unwrap_or("");
            let mechanisms: Vec<&str> = extensions
                .iter()
                .filter_map(|e| e.strip_prefix("AUTH").map(str::trim))
                .flat_map(|m| m.trim_start_matches('=').split_whitespace())
                .collect();
            if mechanisms.contains(&"PLAIN") {
                let token = mime::base64(format!("\0{username}\0{password}").as_bytes());
                self.command(&format!("AUTH PLAIN {token}"), "AUTH PLAIN", &[235])?;
            } else if mechanisms.contains(&"LOGIN") {
                self.command("AUTH LOGIN", "AUTH LOGIN", &[334])?;
                self.command(
                    &mime::base64(username.as_bytes()),
                    "AUTH LOGIN username",
                    &[334],
                )?;
                self.command(
                    &mime::base64(password.as_bytes()),
                    "AUTH LOGIN password",
                    &[235],
                )?;
            } else {
                return Err(self.protocol(format!(
                    "the server offers no AUTH PLAIN or LOGIN (it offers {:?})",
                    mechanisms
                )));
            }
        }
        let from = settings.from.trim();
        self.command(&format!("MAIL FROM:<{from}>"), "MAIL FROM", &[250])?;
        for to in &message.to {
            self.command(
                &format!("RCPT TO:<{to}>"),
                &format!("RCPT TO:<{to}>"),
                &[250, 251],
            )?;
        }
        self.command("DATA", "DATA", &[354])?;
        let unix_seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let text = mime::build(from, message, unix_seconds);
        let data = dot_stuff(&text);
        self.send(data.as_bytes(), "sending the message")?;
        let (code, reply) = self.read_reply("waiting for the reply to the message")?;
        if code != 250 {
            return Err(self.refused("the message (after DATA)", code, reply));
        }
        Ok(())
    }
}

/// The message as DATA carries it: CRLF line ends, a `.` doubled at the start of a line, and
/// the closing `.` line.
fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

fn tls_config(settings: &SmtpSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &settings.ca_file {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read smtp.ca_file {}: {e}", path.display()))?
        {
            let cert =
                cert.map_err(|e| format!("smtp.ca_file {}: bad PEM: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "smtp.ca_file {} holds no certificate",
                path.display()
            ));
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// What the test server saw: the commands, the decoded AUTH PLAIN credentials, and the
    /// DATA exactly as sent (dot-stuffed).
    #[derive(Debug, Default)]
    struct Transcript {
        commands: Vec<String>,
        credentials: Option<String>,
        data: String,
        tls: bool,
    }

    struct Certificates {
        ca_pem: String,
        server: Arc<rustls::ServerConfig>,
    }

    fn certificates() -> Certificates {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tally test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
        Certificates {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }

    fn decode_base64(text: &str) -> String {
        let mut out = Vec::new();
        let (mut buffer, mut bits) = (0u32, 0);
        for b in text.bytes() {
            let Some(v) = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                .iter()
                .position(|&c| c == b)
            else {
                continue;
            };
            buffer = (buffer << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    trait Stream: Read + Write {}
    impl<T: Read + Write> Stream for T {}

    fn read_line(stream: &mut dyn Stream) -> String {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stream.read(&mut byte).unwrap_or(0) == 1 {
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    /// A one-connection SMTP server: offers STARTTLS (when `tls` is given) and AUTH PLAIN,
    /// refuses recipients at `refused.example`.
    fn smtp_server(tls: Option<Arc<rustls::ServerConfig>>) -> (u16, mpsc::Receiver<Transcript>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut transcript = Transcript::default();
            let mut stream: Box<dyn Stream> = Box::new(tcp.try_clone().unwrap());
            stream.write_all(b"220 test ESMTP\r\n").unwrap();
            loop {
                let line = read_line(&mut *stream);
                if line.is_empty() {
                    break;
                }
                let command = line.trim_end().to_string();
                transcript.commands.push(command.clone());
                let upper = command.to_ascii_uppercase();
                if upper.starts_with("EHLO") {
                    let mut reply = String::from("250-test\r\n");
                    if tls.is_some() && !transcript.tls {
                        reply.push_str("250-STARTTLS\r\n");
                    }
                    reply.push_str("250 AUTH PLAIN LOGIN\r\n");
                    stream.write_all(reply.as_bytes()).unwrap();
                } else if upper == "STARTTLS" {
                    stream.write_all(b"220 go ahead\r\n").unwrap();
                    let connection = rustls::ServerConnection::new(tls.clone().unwrap()).unwrap();
                    stream = Box::new(rustls::StreamOwned::new(
                        connection,
                        tcp.try_clone().unwrap(),
                    ));
                    transcript.tls = true;
                } else if let Some(token) = command.strip_prefix("AUTH PLAIN ") {
                    let decoded = decode_base64(token);
                    transcript.credentials = Some(decoded);
                    stream.write_all(b"235 ok\r\n").unwrap();
                } else if upper.starts_with("RCPT") && upper.contains("REFUSED.EXAMPLE") {
                    stream.write_all(b"550 5.1.1 no such user\r\n").unwrap();
                } else if upper == "DATA" {
                    stream.write_all(b"354 go\r\n").unwrap();
                    loop {
                        let l = read_line(&mut *stream);
                        if l == ".\r\n" || l.is_empty() {
                            break;
                        }
                        transcript.data.push_str(&l);
                    }
                    stream.write_all(b"250 queued\r\n").unwrap();
                } else if upper == "QUIT" {
                    stream.write_all(b"221 bye\r\n").unwrap();
                    break;
                } else {
                    stream.write_all(b"250 ok\r\n").unwrap();
                }
            }
            let _ = tx.send(transcript);
        });
        (port, rx)
    }

    fn settings(port: u16, ca_file: Option<PathBuf>) -> SmtpSettings {
        SmtpSettings {
            host: "localhost".into(),
            port,
            starttls: ca_file.is_some(),
            username: Some("alerts".into()),
            password: Some("hunter2".into()),
            from: "tally@example.com".into(),
            ca_file,
            timeout: Duration::from_secs(10),
        }
    }

    fn email() -> Email {
        Email {
            to: vec!["ops@example.com".into()],
            subject: "[FIRING] gpu_hot".into(),
            text: "GPU 0 is at 91 °C\n.a line starting with a dot\n".into(),
            html: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn mail_goes_through_starttls_and_auth_plain_to_a_private_ca_server() {
        let certs = certificates();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &certs.ca_pem).unwrap();
        let (port, rx) = smtp_server(Some(certs.server.clone()));
        send_mail(&settings(port, Some(ca)), &email()).unwrap();
        let transcript = rx.recv().unwrap();
        assert!(transcript.tls, "{transcript:?}");
        assert_eq!(transcript.credentials.as_deref(), Some("\0alerts\0hunter2"));
        let commands = transcript.commands.join("\n");
        assert!(
            commands.contains("MAIL FROM:<tally@example.com>"),
            "{commands}"
        );
        assert!(commands.contains("RCPT TO:<ops@example.com>"), "{commands}");
        assert!(commands.ends_with("QUIT"), "{commands}");
        assert!(transcript.data.contains("Subject: [FIRING] gpu_hot\r\n"));
        let body = mime::base64("GPU 0 is at 91 °C\n.a line starting with a dot\n".as_bytes());
        assert!(transcript.data.replace("\r\n", "").contains(&body));
    }

    #[test]
    fn a_server_certificate_from_an_unknown_ca_is_a_tls_error() {
        let certs = certificates();
        let other = certificates();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("other-ca.pem");
        std::fs::write(&ca, &other.ca_pem).unwrap();
        let (port, _rx) = smtp_server(Some(certs.server.clone()));
        let err = send_mail(&settings(port, Some(ca)), &email()).unwrap_err();
        assert!(matches!(err, NotifyError::Tls { .. }), "{err:?}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_refused_recipient_reports_the_command_code_and_text() {
        let (port, _rx) = smtp_server(None);
        let mut message = email();
        message.to = vec!["nobody@refused.example".into()];
        let err = send_mail(&settings(port, None), &message).unwrap_err();
        match &err {
            NotifyError::Smtp {
                code,
                text,
                command,
                port: p,
                ..
            } => {
                assert_eq!(*code, 550);
                assert_eq!(text, "5.1.1 no such user");
                assert!(command.contains("nobody@refused.example"));
                assert_eq!(*p, port);
            }
            other => panic!("expected an SMTP refusal, got {other:?}"),
        }
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn starttls_required_but_not_offered_is_refused_before_auth() {
        let (port, rx) = smtp_server(None);
        let mut s = settings(port, None);
        s.starttls = true;
        let err = send_mail(&s, &email()).unwrap_err();
        assert!(matches!(err, NotifyError::Protocol { .. }), "{err:?}");
        assert!(err.to_string().contains("STARTTLS"), "{err}");
        drop(rx);
    }

    #[test]
    fn bad_addresses_and_settings_are_rejected_without_connecting() {
        let mut s = settings(1, None);
        s.from = "not an address".into();
        assert!(matches!(
            send_mail(&s, &email()),
            Err(NotifyError::Invalid { .. })
        ));
        let s = settings(1, None);
        let mut message = email();
        message.to = vec!["a@b\r\nRCPT TO:<evil@x>".into()];
        assert!(matches!(
            send_mail(&s, &message),
            Err(NotifyError::Invalid { .. })
        ));
        message.to.clear();
        assert!(matches!(
            send_mail(&s, &message),
            Err(NotifyError::Invalid { .. })
        ));
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_with_a_dot_line() {
        assert_eq!(dot_stuff("a\n.b\r\n..c"), "a\r\n..b\r\n...c\r\n.\r\n");
    }

    #[test]
    fn the_password_is_redacted_in_debug_output_and_not_serialized() {
        let s = settings(25, None);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!toml::to_string(&s).unwrap().contains("hunter2"));
    }
}
